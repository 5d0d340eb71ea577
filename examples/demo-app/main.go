// Command demo-app is the small HTTP service the rollwave demo and tests
// deploy. Its release artifact is a tarball holding this binary and a
// config/ directory; the app answers / with the version in config/version
// and /healthz with 200, or 503 when config/healthy says "no" — that is how
// a "broken" release is built for the demo without a different binary.
// config/healthy may also hold a duration ("3s"): healthy for that long
// after start, then failing, like a release with a slow leak.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
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
	healthy := func() bool {
		if timed {
			return time.Since(started) < healthyFor
		}
		return healthySetting != "no"
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
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

func readFile(dir, name, def string) string {
	b, err := os.ReadFile(filepath.Join(dir, "config", name))
	if err != nil {
		return def
	}
	return strings.TrimSpace(string(b))
}
