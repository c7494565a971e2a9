// TCP echo server: one goroutine per connection, read then write back.
//
// usage: go_echo --port N --threads N   (threads 0 = GOMAXPROCS(1))
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	port := flag.Int("port", -1, "TCP port on 127.0.0.1")
	threads := flag.Int("threads", -1, "GOMAXPROCS (0 means 1)")
	flag.Parse()
	if *port < 0 || *threads < 0 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: go_echo --port N --threads N")
		os.Exit(2)
	}
	if *threads == 0 {
		*threads = 1
	}
	runtime.GOMAXPROCS(*threads)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_echo:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
