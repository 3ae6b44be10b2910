package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// lookupFunc resolves a host name to its IP addresses. Tests inject one so
// that no DNS query is made.
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// systemLookup resolves host with the system resolver.
func systemLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// parseAddr turns --addr, either host:port or an http(s) URL, into the base
// URL requests are made against. An empty host (":8080") means localhost.
func parseAddr(addr string) (*url.URL, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return nil, errors.New("--addr is empty")
	}
	if !strings.Contains(addr, "://") {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("--addr %q: want host:port or a URL: %w", addr, err)
		}
		if host == "" {
			host = "localhost"
		}
		addr = "http://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("--addr %q: scheme %q, want http or https", addr, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("--addr %q has no host", addr)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--addr %q: want scheme://host[:port][/path] only", addr)
	}
	return u, nil
}

// checkLoopback refuses host unless it is "localhost" or every address it
// resolves to is loopback (127.0.0.0/8 or ::1). IP literals are judged
// without a lookup; lookup (nil means the system resolver) resolves names.
func checkLoopback(ctx context.Context, host string, lookup lookupFunc) error {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !isLoopback(ip) {
			return fmt.Errorf("refusing %s: not a loopback address; this tool only sends traffic to this machine (127.0.0.0/8, ::1, localhost)", host)
		}
		return nil
	}
	if lookup == nil {
		lookup = systemLookup
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := lookup(ctx, host)
	if err != nil {
		return fmt.Errorf("refusing %s: resolving it to check it is loopback: %w", host, err)
	}
	if len(ips) == 0 {
		return fmt.Errorf("refusing %s: it resolves to no address", host)
	}
	for _, ip := range ips {
		if !isLoopback(ip) {
			return fmt.Errorf("refusing %s: it resolves to %s, which is not loopback; this tool only sends traffic to this machine", host, ip)
		}
	}
	return nil
}

// isLoopback reports whether ip is in 127.0.0.0/8 or is ::1 (an IPv4-mapped
// IPv6 address counts as its IPv4 address).
func isLoopback(ip netip.Addr) bool {
	return ip.Unmap().WithZone("").IsLoopback()
}

// loopbackOnly is a net.Dialer Control function that refuses to connect to
// any address that is not loopback. It runs after name resolution, for every
// connection, so a name that resolves differently later (or a redirect, or a
// proxy) still cannot make the tool send traffic off the machine.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("refusing to dial %q: %w", address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("refusing to dial %q: not an IP address: %w", address, err)
	}
	if !isLoopback(ip) {
		return fmt.Errorf("refusing to dial %s: not a loopback address", address)
	}
	return nil
}

// newClient returns an HTTP client for clients concurrent workers: it keeps
// one idle connection per worker, uses no proxy, follows no redirect and can
// only dial loopback addresses. Per-request timeouts come from contexts.
func newClient(clients int) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackOnly}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConns:        clients + 4,
		MaxIdleConnsPerHost: clients + 4,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
