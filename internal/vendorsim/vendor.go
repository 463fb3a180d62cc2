package vendorsim

// A simulated vendor (or product, such as ThoughtSpot or Tableau, that an
// operator block reaches) lives in its own file: a function named
// <name>Vendor, taking nothing and returning a vendor, declares its routes,
// the state they keep, its cmd/vendorsim flags and its startup log line.
// hack/vendorsimlist lists those functions in zz_generated.vendors.go (go
// generate), so adding a vendor edits no file of the simulator's core.

//go:generate go run ../../hack/vendorsimlist

// vendor is what one vendor's file declares.
type vendor struct {
	// mount builds the vendor's routes for s, configured by opts.
	mount func(s *Server, opts Options) routes
	// flags declares the vendor's cmd/vendorsim flags on f and how their
	// values reach Options; nil when it has none.
	flags func(f *Flags)
	// banner is cmd/vendorsim's startup line saying where below base the
	// vendor is served.
	banner func(base string, opts Options) string
}

// routes are a vendor's endpoints and, when they remember something between
// calls beyond the shared token store (redeemed nonces, sessions), how
// Server.Reset forgets it. reset runs with the server's lock held, so it
// must not call the Server's methods; a vendor's state lives in the
// closures of its endpoints, or in the Server where exported methods read
// it.
type routes struct {
	endpoints []endpoint
	reset     func()
}

// one is the routes of a vendor with a single stateless endpoint.
func one(e endpoint) routes { return routes{endpoints: []endpoint{e}} }
