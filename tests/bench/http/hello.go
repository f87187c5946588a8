// hello.go: the Go net/http peer of grove's demos/http_server for the HTTP
// benchmark. GET / answers "Hello, World!\n" with the same status line and
// header fields as the grove demo (Content-Length, Content-Type, Date);
// other paths get 404. Run with GOMAXPROCS=1 to compare with one grove hub.
//
//	hello [PORT]   (127.0.0.1; default 8080, 0 = any free port)
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
)

var body = []byte("Hello, World!\n")

func hello(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	// Set directly: no sniffing, no canonicalisation on the hot path.
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.Write(body)
}

func main() {
	port := "8080"
	if len(os.Args) > 2 {
		fmt.Fprintf(os.Stderr, "usage: %s [PORT]\n", os.Args[0])
		os.Exit(2)
	}
	if len(os.Args) == 2 {
		if p, err := strconv.ParseUint(os.Args[1], 10, 16); err != nil {
			fmt.Fprintf(os.Stderr, "%s: bad port '%s'\n", os.Args[0], os.Args[1])
			os.Exit(2)
		} else {
			port = strconv.FormatUint(p, 10)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
		os.Exit(1)
	}
	fmt.Printf("listening on http://%s/\n", ln.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("/", hello)
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
		os.Exit(1)
	}
}
