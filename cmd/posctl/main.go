// Command posctl is the cashier's and operator's tool over posd's local API.
//
//	posctl [-api ADDR] [-token-file F] COMMAND [ARGS]
//
// ADDR is host:port or unix:/path (default $POSD_API, else 127.0.0.1:8321).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const usage = `usage: posctl [-api ADDR] [-token-file FILE] COMMAND [ARGS]

  charge AMOUNT [-lane L1] [-subject S] [-body B]   open a charge of AMOUNT yuan (12.34)
  status ID [--wait]                                show a charge; --wait until it is final
  cancel ID                                         cancel a charge not yet scanned
  refund ID                                         refund a paid charge in full
  receipt ID                                        print its receipt again
  orders [--unresolved]                             list attempts
  devices                                           scanners and displays, and their state
  fleet status                                      the outbox for the head office: pending, oldest, last ack
  events                                            follow what happens at every lane
  report --date YYYY-MM-DD [--csv]                  counts and totals per wallet and state
  totals --date YYYY-MM-DD [--lane L] [--op-user-id U] [--shift S]
                                                    paid, refunded and net per wallet
  reconcile --date YYYY-MM-DD [--csv]               query every order of the day at the gateway and
                                                    list where the journal and the gateway disagree
  export --from YYYY-MM-DD --to YYYY-MM-DD [--format csv|json]
  resolve ID --paid|--not-paid --by NAME --why TEXT an operator's decision on an order that needs attention
`

var boolFlags = map[string]bool{"wait": true, "unresolved": true, "csv": true, "paid": true, "not-paid": true}

// parse splits args into positional arguments and flags, in any order.
func parse(args []string) (pos []string, flags map[string]string, err error) {
	flags = map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if k, v, ok := strings.Cut(name, "="); ok {
			flags[k] = v
			continue
		}
		if boolFlags[name] {
			flags[name] = "true"
			continue
		}
		if i+1 >= len(args) {
			return nil, nil, fmt.Errorf("flag -%s needs a value", name)
		}
		flags[name] = args[i+1]
		i++
	}
	return pos, flags, nil
}

var amountRE = regexp.MustCompile(`^(\d{1,9})(?:\.(\d{1,2}))?$`)

// Fen turns "12.34" yuan into 1234 fen exactly: no floats near money.
func Fen(s string) (int64, error) {
	m := amountRE.FindStringSubmatch(strings.TrimPrefix(strings.TrimPrefix(s, "¥"), "￥"))
	if m == nil {
		return 0, fmt.Errorf("amount %q: yuan with at most two decimals, such as 12.34", s)
	}
	yuan, _ := strconv.ParseInt(m[1], 10, 64)
	frac := m[2]
	for len(frac) < 2 {
		frac += "0"
	}
	fen, _ := strconv.ParseInt(frac, 10, 64)
	total := yuan*100 + fen
	if total <= 0 {
		return 0, fmt.Errorf("amount %q: must be more than 0", s)
	}
	return total, nil
}

type client struct {
	addr  string
	http  *http.Client
	token string
}

func newClient(addr, tokenFile string) (*client, error) {
	c := &client{addr: addr}
	tr := &http.Transport{}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
		c.addr = "posd"
	}
	c.http = &http.Client{Transport: tr}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, err
		}
		c.token = strings.TrimSpace(string(b))
	}
	return c, nil
}

// errDown is what the cashier reads when posd is not running.
type errDown struct {
	addr string
	err  error
}

func (e errDown) Error() string {
	return fmt.Sprintf("cannot reach posd at %s: is it running? (systemctl status posd)\n  %v", e.addr, e.err)
}

func (c *client) do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+c.addr+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if method != http.MethodGet {
		// posd takes state changes as JSON only (a browser cannot send
		// that cross-origin without a preflight).
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, errDown{c.addr, err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// call makes a request and fails on any non-2xx answer with posd's message.
func (c *client) call(method, path string, body any) ([]byte, error) {
	code, b, err := c.do(method, path, body)
	if err != nil {
		return nil, err
	}
	if code >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("posd: %s (HTTP %d)", e.Error, code)
		}
		return nil, fmt.Errorf("posd: HTTP %d: %s", code, bytes.TrimSpace(b))
	}
	return b, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	addr := os.Getenv("POSD_API")
	if addr == "" {
		addr = "127.0.0.1:8321"
	}
	tokenFile := os.Getenv("POSD_TOKEN_FILE")
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch strings.TrimLeft(args[0], "-") {
		case "api":
			if len(args) < 2 {
				fmt.Fprint(stderr, usage)
				return 2
			}
			addr, args = args[1], args[2:]
		case "token-file":
			if len(args) < 2 {
				fmt.Fprint(stderr, usage)
				return 2
			}
			tokenFile, args = args[1], args[2:]
		default:
			fmt.Fprint(stderr, usage)
			return 2
		}
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	c, err := newClient(addr, tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "posctl:", err)
		return 1
	}
	if err := command(c, args[0], args[1:], stdout); err != nil {
		fmt.Fprintln(stderr, "posctl:", err)
		var down errDown
		if errors.As(err, &down) {
			return 3
		}
		return 1
	}
	return 0
}

func command(c *client, cmd string, args []string, out io.Writer) error {
	pos, fl, err := parse(args)
	if err != nil {
		return err
	}
	need := func(n int) error {
		if len(pos) < n {
			return fmt.Errorf("%s: missing argument\n%s", cmd, usage)
		}
		return nil
	}
	show := func(b []byte, err error) error { return printJSON(out, b, err) }
	switch cmd {
	case "charge":
		if err := need(1); err != nil {
			return err
		}
		return openCharge(c, pos[0], fl, show)
	case "status":
		if err := need(1); err != nil {
			return err
		}
		return status(c, pos[0], fl["wait"] != "", show)
	case "cancel":
		if err := need(1); err != nil {
			return err
		}
		return show(c.call("DELETE", "/v1/charges/"+pos[0], nil))
	case "refund":
		if err := need(1); err != nil {
			return err
		}
		return show(c.call("POST", "/v1/charges/"+pos[0]+"/refund", nil))
	case "receipt":
		if err := need(1); err != nil {
			return err
		}
		return show(c.call("POST", "/v1/charges/"+pos[0]+"/receipt", nil))
	case "orders":
		q := "all"
		if fl["unresolved"] != "" {
			q = "unresolved"
		}
		return show(c.call("GET", "/v1/orders?state="+q, nil))
	case "devices":
		return show(c.call("GET", "/v1/devices", nil))
	case "report":
		path := "/v1/report?date=" + fl["date"]
		if fl["csv"] != "" {
			path += "&format=csv"
		}
		return show(c.call("GET", path, nil))
	case "totals":
		q := url.Values{"date": {fl["date"]}, "lane": {fl["lane"]}, "op_user_id": {fl["op-user-id"]}, "shift": {fl["shift"]}}
		return show(c.call("GET", "/v1/totals?"+q.Encode(), nil))
	case "reconcile":
		return reconcile(c, fl["date"], fl["csv"] != "", out)
	case "export":
		format := fl["format"]
		if format == "" {
			format = "csv"
		}
		return show(c.call("GET", "/v1/export?from="+fl["from"]+"&to="+fl["to"]+"&format="+format, nil))
	case "resolve":
		if err := need(1); err != nil {
			return err
		}
		return resolve(c, pos[0], fl, show)
	case "events":
		return follow(c, out)
	case "fleet":
		if len(pos) != 1 || pos[0] != "status" {
			return fmt.Errorf("fleet: only \"fleet status\"\n%s", usage)
		}
		return show(c.call("GET", "/v1/fleet", nil))
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// printJSON prints an answer indented (JSON) or as it came (CSV).
func printJSON(out io.Writer, b []byte, err error) error {
	if err != nil {
		return err
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		_, err = out.Write(b)
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// openCharge opens a charge of fee (yuan) on --lane (L1).
func openCharge(c *client, fee string, fl map[string]string, show func([]byte, error) error) error {
	f, err := Fen(fee)
	if err != nil {
		return err
	}
	lane := fl["lane"]
	if lane == "" {
		lane = "L1"
	}
	subject := fl["subject"]
	if subject == "" {
		subject = "posctl charge"
	}
	body := fl["body"]
	if body == "" {
		body = subject
	}
	return show(c.call("POST", "/v1/charges", map[string]any{"lane": lane, "total_fee": f, "subject": subject, "body": body}))
}

// status shows a charge; with wait, once it is settled.
func status(c *client, id string, wait bool, show func([]byte, error) error) error {
	if !wait {
		return show(c.call("GET", "/v1/charges/"+id, nil))
	}
	// Look first: ?wait= waits for the next change, and a charge that
	// is already settled may never change again.
	path := "/v1/charges/" + id
	for {
		b, err := c.call("GET", path, nil)
		if err != nil {
			return err
		}
		var ch struct{ State string }
		_ = json.Unmarshal(b, &ch)
		if ch.State != "paying" && ch.State != "awaiting_scan" {
			return show(b, nil)
		}
		path = "/v1/charges/" + id + "?wait=30s"
	}
}

// reconcile starts (or resumes) the day's reconciliation, follows it to
// its end, and prints it (or its disagreements as CSV).
func reconcile(c *client, date string, csv bool, out io.Writer) error {
	if _, err := c.call("POST", "/v1/reconcile", map[string]string{"date": date}); err != nil {
		return err
	}
	for {
		b, err := c.call("GET", "/v1/reconcile?date="+url.QueryEscape(date), nil)
		if err != nil {
			return err
		}
		var run struct{ State string }
		_ = json.Unmarshal(b, &run)
		if run.State != "running" {
			if csv {
				b, err := c.call("GET", "/v1/reconcile?format=csv&date="+url.QueryEscape(date), nil)
				return printJSON(out, b, err)
			}
			return printJSON(out, b, nil)
		}
		time.Sleep(time.Second)
	}
}

// resolve records an operator's decision on an order that needs attention.
func resolve(c *client, id string, fl map[string]string, show func([]byte, error) error) error {
	decision := ""
	switch {
	case fl["paid"] != "" && fl["not-paid"] == "":
		decision = "paid"
	case fl["not-paid"] != "" && fl["paid"] == "":
		decision = "not_paid"
	default:
		return errors.New("resolve: say --paid or --not-paid (what the gateway's records show)")
	}
	return show(c.call("POST", "/v1/orders/"+id+"/resolve", map[string]string{"decision": decision, "by": fl["by"], "why": fl["why"]}))
}

// follow prints every event as one JSON line until posd goes away.
func follow(c *client, out io.Writer) error {
	req, _ := http.NewRequest("GET", "http://"+c.addr+"/v1/events", nil)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return errDown{c.addr, err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("posd: HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			fmt.Fprintln(out, data)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errDown{c.addr, errors.New("the event stream ended")}
}
