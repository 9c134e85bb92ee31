// A stand-in for a gRPC microservice in tests: it serves the standard gRPC health protocol
// (grpc.health.v1.Health, SERVING for the server and for every service name) and answers any
// plain HTTP request with 200, on one port ($PORT, default 8080), so that the manifests of a
// gRPC application run unchanged with their images replaced. Built statically by
// scripts/build-images from Debian's golang-go and golang-google-grpc-dev.
package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// everything is healthy: the server and any service a probe names
type healthy struct{}

func (healthy) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (healthy) Watch(*healthpb.HealthCheckRequest, healthpb.Health_WatchServer) error {
	return status.Error(codes.Unimplemented, "watch is not served")
}

// a listener fed one connection at a time by the sniffer
type chanListener struct {
	conns chan net.Conn
	addr  net.Addr
}

func (l *chanListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, fmt.Errorf("closed")
	}
	return c, nil
}
func (l *chanListener) Close() error   { return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// a connection whose first bytes were already read to tell HTTP/2 from HTTP/1
type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (p peeked) Read(b []byte) (int, error) { return p.r.Read(b) }

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		log.Fatal(err)
	}
	grpcLn := &chanListener{make(chan net.Conn), ln.Addr()}
	httpLn := &chanListener{make(chan net.Conn), ln.Addr()}
	g := grpc.NewServer()
	healthpb.RegisterHealthServer(g, healthy{})
	go g.Serve(grpcLn)
	go http.Serve(httpLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s\n", os.Getenv("HOSTNAME"))
	}))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-stop; os.Exit(0) }()
	log.Printf("serving gRPC health and HTTP on :%s", port)
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func(c net.Conn) {
			r := bufio.NewReader(c)
			head, err := r.Peek(3)
			if err != nil { // a TCP probe: connected, then closed
				c.Close()
				return
			}
			if bytes.Equal(head, []byte("PRI")) { // the HTTP/2 preface: gRPC
				grpcLn.conns <- peeked{c, r}
			} else {
				httpLn.conns <- peeked{c, r}
			}
		}(c)
	}
}
