// Command httpd is the slot package's test app: an HTTP server that
// answers / with its version and /healthz with 200 or 503.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	listen := flag.String("listen", "", "address to listen on (default 127.0.0.1:$ROLLWAVE_PORT)")
	version := flag.String("version", "dev", "version to answer / with")
	healthy := flag.Bool("healthy", true, "answer /healthz with 200 (else 503)")
	flag.Parse()
	addr := *listen
	if addr == "" {
		addr = "127.0.0.1:" + os.Getenv("ROLLWAVE_PORT")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, *version) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !*healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	srv := &http.Server{Addr: addr, Handler: mux}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		<-ch
		srv.Close()
	}()
	log.Printf("httpd %s listening on %s", *version, addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
