// net/http HTTP/1.1 hello-world server, the idiomatic Go peer.
//
// usage: go_http --port N --threads N   (threads 0 = GOMAXPROCS(1))
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
)

func main() {
	port := flag.Int("port", -1, "TCP port on 127.0.0.1")
	threads := flag.Int("threads", -1, "GOMAXPROCS (0 means 1)")
	flag.Parse()
	if *port < 0 || *threads < 0 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: go_http --port N --threads N")
		os.Exit(2)
	}
	if *threads == 0 {
		*threads = 1
	}
	runtime.GOMAXPROCS(*threads)
	body := []byte("Hello world!")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	err := http.ListenAndServe(fmt.Sprintf("127.0.0.1:%d", *port), nil)
	fmt.Fprintln(os.Stderr, "go_http:", err)
	os.Exit(1)
}
