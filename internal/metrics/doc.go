// Package metrics holds the operator's Prometheus series: each request's
// token validity, read from the manager's cache at scrape time so tens of
// thousands of requests cost no memory between scrapes; every vendor call's
// result and latency; and the size of what tenants' objects can grow in
// memory. Register lets a component created twice in one process (a
// manager restarted by a test, an endpoint recreated) keep its series.
package metrics
