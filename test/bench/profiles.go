package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/client-go/kubernetes"

	"github.com/embedtokens/embed-token-operator/test/harness"
)

// captureProfiles fetches CPU profiles in the background from the start of
// issuing: the manager's for cfg.Profile, kube-apiserver's and etcd's for
// cfg.APIProfile. The channel closes when all are saved.
func captureProfiles(ctx context.Context, cfg config, cp *harness.ControlPlane, managerPprof string, res *results) <-chan struct{} {
	var wg sync.WaitGroup
	if cfg.Profile > 0 {
		res.ProfilePath = filepath.Join(cfg.OutDir, "manager-cpu.pprof")
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", managerPprof, int(cfg.Profile.Seconds()))
		wg.Go(func() { saveProfile(res.ProfilePath, func() (io.ReadCloser, error) { return httpGet(ctx, url) }) })
	}
	if cfg.APIProfile > 0 {
		seconds := fmt.Sprint(int(cfg.APIProfile.Seconds()))
		res.APIServerProfilePath = filepath.Join(cfg.OutDir, "kube-apiserver-cpu.pprof")
		wg.Go(func() {
			saveProfile(res.APIServerProfilePath, func() (io.ReadCloser, error) {
				cs, err := kubernetes.NewForConfig(cp.Config)
				if err != nil {
					return nil, err
				}
				return cs.Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", seconds).Stream(ctx)
			})
		})
		res.EtcdProfilePath = filepath.Join(cfg.OutDir, "etcd-cpu.pprof")
		url := cp.EtcdURL() + "/debug/pprof/profile?seconds=" + seconds
		wg.Go(func() { saveProfile(res.EtcdProfilePath, func() (io.ReadCloser, error) { return httpGet(ctx, url) }) })
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

func httpGet(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close() // unread: the status is the error
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return resp.Body, nil
}

// saveProfile writes what open returns to path; a failure is reported and
// leaves the run going.
func saveProfile(path string, open func() (io.ReadCloser, error)) {
	body, err := open()
	if err == nil {
		defer func() { _ = body.Close() }() // read-only
		var f *os.File
		if f, err = os.Create(path); err == nil {
			_, err = io.Copy(f, body)
			err = errors.Join(err, f.Close())
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: CPU profile", filepath.Base(path)+":", err)
	}
}
