package e2e

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Fault is what the proxy does to one request.
type Fault string

const (
	NoFault     Fault = ""
	DropBefore  Fault = "drop-before"  // connection closed, nothing forwarded
	DropAfter   Fault = "drop-after"   // forwarded (the gateway acted), connection closed: posd never hears
	Delay       Fault = "delay"        // forwarded, answered after posd's timeout
	Status500   Fault = "http-500"     // answered 500, nothing forwarded
	Status502   Fault = "http-502"     // forwarded (the gateway acted), answered 502
	Truncate    Fault = "truncate"     // forwarded, half the body answered
	CorruptSign Fault = "corrupt-sign" // forwarded, the signature altered
	// Not in AllFaults: a gateway's own answers, for the scenarios that need them.
	Refuse   Fault = "refuse"   // answered code 108 (refused), nothing forwarded
	Lagging  Fault = "lagging"  // answered code 301 (a lagging replica), nothing forwarded
	Redirect Fault = "redirect" // answered 307 to another host, nothing forwarded
)

// AllFaults is every kind the proxy injects.
var AllFaults = []Fault{DropBefore, DropAfter, Delay, Status500, Status502, Truncate, CorruptSign}

// faultProxy sits between posd and the sandbox on loopback. script picks
// the fault for the n-th (1-based) request of each call kind.
type faultProxy struct {
	url      string
	upstream string
	delay    time.Duration
	// redirectTo is where a Redirect fault points.
	redirectTo string

	mu       sync.Mutex
	counts   map[string]int
	script   func(call string, n int) Fault
	injected map[Fault]int
	srv      *http.Server
}

func startFaultProxy(t *testing.T, upstream string, delay time.Duration, script func(string, int) Fault) *faultProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &faultProxy{url: "http://" + l.Addr().String() + "/", upstream: upstream, delay: delay,
		counts: map[string]int{}, script: script, injected: map[Fault]int{}}
	p.srv = &http.Server{Handler: p}
	go func() { _ = p.srv.Serve(l) }()
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// setScript swaps the script (the chaos run ends with a fault-free phase).
func (p *faultProxy) setScript(s func(string, int) Fault) {
	p.mu.Lock()
	p.script = s
	p.mu.Unlock()
}

func (p *faultProxy) faults() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[Fault]int{}
	for k, v := range p.injected {
		out[k] = v
	}
	return out
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := strings.TrimPrefix(r.URL.Path, "/")
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.counts[call]++
	f := NoFault
	if p.script != nil && !strings.HasPrefix(call, "_sandbox") {
		f = p.script(call, p.counts[call])
	}
	if f != NoFault {
		p.injected[f]++
	}
	p.mu.Unlock()

	hangUp := func() {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	switch f {
	case DropBefore:
		hangUp()
		return
	case Status500:
		http.Error(w, "injected", http.StatusInternalServerError)
		return
	case Refuse:
		_, _ = io.WriteString(w, `{"code":108,"msg":"refused (injected)","data":null}`)
		return
	case Lagging:
		_, _ = io.WriteString(w, `{"code":301,"msg":"order not found (injected lagging replica)","data":null}`)
		return
	case Redirect:
		http.Redirect(w, r, p.redirectTo+call, http.StatusTemporaryRedirect)
		return
	}
	resp, err := http.Post(p.upstream+call, r.Header.Get("Content-Type"), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch f {
	case DropAfter:
		hangUp()
		return
	case Status502:
		http.Error(w, "injected", http.StatusBadGateway)
		return
	case Delay:
		select {
		case <-time.After(p.delay):
		case <-r.Context().Done():
			return
		}
	case Truncate:
		out = out[:len(out)/2]
	case CorruptSign:
		if i := bytes.Index(out, []byte(`"sign":"`)); i >= 0 && i+8 < len(out) {
			c := out[i+8]
			if c == 'A' {
				out[i+8] = 'B'
			} else {
				out[i+8] = 'A'
			}
		}
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// only injects f on the n-th request of one call kind.
func only(call string, n int, f Fault) func(string, int) Fault {
	return func(c string, k int) Fault {
		if c == call && k == n {
			return f
		}
		return NoFault
	}
}

// randomFaults injects a fault on a fraction of requests, from a seed.
func randomFaults(seed uint64, rate float64) func(string, int) Fault {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(string, int) Fault {
		mu.Lock()
		defer mu.Unlock()
		if rng.Float64() >= rate {
			return NoFault
		}
		return AllFaults[rng.IntN(len(AllFaults))]
	}
}
