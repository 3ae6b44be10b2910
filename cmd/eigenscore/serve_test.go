package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eigenscore/eigenscore"
	"github.com/eigenscore/eigenscore/internal/testenv"
	"github.com/eigenscore/eigenscore/serve"
)

// selfSigned writes a certificate and key for 127.0.0.1.
func selfSigned(t *testing.T, dir string) (cert, key string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key
}

// The serve command's loop over HTTPS with a token: requests in flight
// when the shutdown signal comes (the command's context ends, as on
// SIGTERM) all complete with 200, and the loop returns only after that.
func TestServeDrainsOnSignal(t *testing.T) {
	m := eigenscore.NewModel(testenv.FashionMixture(t), "gmm:fashion-mnist", "test-gmm")
	det, err := eigenscore.Fit(context.Background(), m, testenv.Load(t, "fashion-mnist", "train").Head(10),
		&eigenscore.Options{Preset: "fast+iters=1", Sigmas: []float64{0.5, 1}, Acceptance: 0.8})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(det, m, serve.Options{Token: "t0k", MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cert, key := selfSigned(t, t.TempDir())
	f := serveFlags{addr: addr, tlsCert: cert, tlsKey: key, drain: 30 * time.Second, readTimeout: time.Minute,
		headerTime: 10 * time.Second, idleTimeout: time.Minute, maxHeaderBytes: 1 << 16}
	ctx, signal := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveUntilDone(ctx, srv, f, det, m) }()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := "https://" + addr
	for i := 0; ; i++ {
		if r, err := client.Get(url + "/healthz"); err == nil && r.StatusCode == 200 {
			break
		}
		if i > 100 {
			t.Fatal("server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	img := testenv.Load(t, "fashion-mnist", "test").Image(0)
	b, _ := json.Marshal(map[string]any{"images": [][]float32{img, img, img}})
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, url+"/v1/score", strings.NewReader(string(b)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer t0k")
			r, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			codes[i] = r.StatusCode
		}()
	}
	time.Sleep(100 * time.Millisecond) // requests in flight
	signal()
	if err := <-done; err != nil {
		t.Fatalf("serve loop: %v", err)
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d in flight at the signal got %d", i, c)
		}
	}
}
