// Command demo-app is the small HTTP service the rollwave demo and tests
// deploy. Its release artifact is a tarball holding this binary and a
// config/ directory; the app answers / with the version in config/version
// and /healthz with 200, or 503 when config/healthy says "no" — that is how
// a "broken" release is built for the demo without a different binary.
// config/healthy may also hold a duration ("3s"): healthy for that long
// after start, then failing, like a release with a slow leak.
// config/error_rate ("0.1") makes that share of requests to / answer 500
// (every n-th, deterministically: 0.1 fails requests 10, 20, 30, …) while
// /healthz stays fine; config/delay ("250ms") delays every answer to /.
// That is how a release that hurts users but passes its health check is
// built. config/fail_above_rps ("5") answers 500 to every request to /
// beyond that many in the current second: a version whose errors show
// only under real load. Every answer to / carries X-Version.
// config/unhealthy_if_file ("/run/bad-host"), an absolute path: /healthz
// answers 503 while that file exists on the host — one artifact that is
// broken on exactly the hosts an operator (or a benchmark) marks.
// config/log_requests ("yes") logs every request to / as
// "demo-app VERSION: GET /path" (what `rollwave logs -f` shows).
// built. config/error_rate is read again every 250ms, so a test can make a
// running app start failing (a fault injected after a rollout).
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", "", "slot directory holding config/version and config/healthy (default: the binary's ../)")
	listen := flag.String("listen", "", "address to listen on (default 127.0.0.1:$ROLLWAVE_PORT)")
	flag.Parse()
	if *dir == "" {
		exe, err := os.Executable()
		if err != nil {
			log.Fatalf("find own path: %v", err)
		}
		*dir = filepath.Dir(filepath.Dir(exe))
	}
	addr := *listen
	if addr == "" {
		port := os.Getenv("ROLLWAVE_PORT")
		if port == "" {
			log.Fatal("no -listen and no ROLLWAVE_PORT")
		}
		addr = "127.0.0.1:" + port
	}
	version := readFile(*dir, "version", "dev")
	healthySetting := readFile(*dir, "healthy", "yes")
	started := time.Now()
	healthyFor, timed := time.Duration(0), false
	if d, err := time.ParseDuration(healthySetting); err == nil {
		healthyFor, timed = d, true
	}
	badIfFile := readFile(*dir, "unhealthy_if_file", "")
	if badIfFile != "" && !filepath.IsAbs(badIfFile) {
		log.Fatalf("config/unhealthy_if_file: want an absolute path, got %q", badIfFile)
	}
	healthy := func() bool {
		if badIfFile != "" {
			if _, err := os.Stat(badIfFile); err == nil {
				return false
			}
		}
		if timed {
			return time.Since(started) < healthyFor
		}
		return healthySetting != "no"
	}

	errorRate, ok := parseRate(readFile(*dir, "error_rate", "0"))
	if !ok {
		log.Fatalf("config/error_rate: want a fraction from 0 to 1, got %q", readFile(*dir, "error_rate", "0"))
	}
	var rateBits atomic.Uint64
	rateBits.Store(math.Float64bits(errorRate))
	go func() {
		// Read again, so a running app can be made to fail; a bad
		// value keeps the current rate.
		for range time.Tick(250 * time.Millisecond) {
			if r, ok := parseRate(readFile(*dir, "error_rate", "0")); ok {
				rateBits.Store(math.Float64bits(r))
			}
		}
	}()
	delay, err := time.ParseDuration(readFile(*dir, "delay", "0s"))
	if err != nil || delay < 0 || delay > time.Minute {
		log.Fatalf("config/delay: want a duration from 0s to 1m, got %q", readFile(*dir, "delay", "0s"))
	}
	logRequests := readFile(*dir, "log_requests", "no") == "yes"
	failAbove, err := strconv.ParseInt(readFile(*dir, "fail_above_rps", "0"), 10, 64)
	if err != nil || failAbove < 0 {
		log.Fatalf("config/fail_above_rps: want a whole number of requests per second, got %q", readFile(*dir, "fail_above_rps", "0"))
	}
	var served atomic.Uint64
	var second, inSecond atomic.Int64 // the current Unix second and the requests counted in it

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if logRequests {
			log.Printf("demo-app %s: %s %s", version, r.Method, r.URL.Path)
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("X-Version", version)
		if failAbove > 0 {
			now := time.Now().Unix()
			if old := second.Load(); old != now && second.CompareAndSwap(old, now) {
				inSecond.Store(0)
			}
			if inSecond.Add(1) > failAbove {
				http.Error(w, "overloaded (fail_above_rps)", http.StatusInternalServerError)
				return
			}
		}
		// Request n fails when it crosses the next multiple of 1/rate.
		errorRate := math.Float64frombits(rateBits.Load())
		n := float64(served.Add(1))
		if int64(n*errorRate) > int64((n-1)*errorRate) {
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, version)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !healthy() {
			http.Error(w, "unhealthy by configuration", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		srv.Close()
	}()
	log.Printf("demo-app %s listening on %s (healthy=%s)", version, addr, healthySetting)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// parseRate parses an error rate, a fraction from 0 to 1.
func parseRate(s string) (float64, bool) {
	r, err := strconv.ParseFloat(s, 64)
	return r, err == nil && r >= 0 && r <= 1
}

func readFile(dir, name, def string) string {
	b, err := os.ReadFile(filepath.Join(dir, "config", name))
	if err != nil {
		return def
	}
	return strings.TrimSpace(string(b))
}
