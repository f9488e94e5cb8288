package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"example.com/posd/docs"
)

// The API's contract is docs/openapi.yaml. Every exchange a test has with
// posd is held to it, strictly: an object with a property the document
// does not declare fails, as does a status, a content type or a route it
// does not list.

type contract struct {
	doc    *openapi3.T
	router routers.Router
}

var loadContract = sync.OnceValues(func() (*contract, error) {
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	doc.Servers = nil // routes by path, whatever host a test used
	strict(doc)
	r, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	return &contract{doc: doc, router: r}, nil
})

// strict makes every object schema of doc refuse properties it does not
// declare.
func strict(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(r *openapi3.SchemaRef)
	walk = func(r *openapi3.SchemaRef) {
		if r == nil || r.Value == nil || seen[r.Value] {
			return
		}
		s := r.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			no := false
			s.AdditionalProperties.Has = &no
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		for _, l := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, x := range l {
				walk(x)
			}
		}
	}
	if doc.Components != nil {
		for _, s := range doc.Components.Schemas {
			walk(s)
		}
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for _, mt := range op.RequestBody.Value.Content {
					walk(mt.Schema)
				}
			}
			if op.Responses == nil {
				continue
			}
			for _, resp := range op.Responses.Map() {
				if resp.Value == nil {
					continue
				}
				for _, mt := range resp.Value.Content {
					walk(mt.Schema)
				}
			}
		}
	}
}

// Exchange is one request a test made and posd's answer.
type Exchange struct {
	Method, Path string // the path with its query
	Header       http.Header
	Body         []byte
	Status       int
	RespHeader   http.Header
	RespBody     []byte
}

// CheckExchange holds an exchange to the contract. A request the document
// refuses must have been refused by posd too (a 4xx): a till built from
// the document never sends what posd would take; an answer must be one the
// document describes, exactly. Event streams are checked up to their
// headers (their messages: CheckEvent).
func CheckExchange(x Exchange) error {
	c, err := loadContract()
	if err != nil {
		return err
	}
	u, err := url.Parse("http://posd" + x.Path)
	if err != nil {
		return err
	}
	req := &http.Request{Method: x.Method, URL: u, Header: x.Header.Clone(), Host: "posd",
		Body: io.NopCloser(bytes.NewReader(x.Body)), ContentLength: int64(len(x.Body))}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if x.Status >= 400 && x.Status < 500 {
			return checkBareError(x) // a route no document lists: refused, in the error shape
		}
		return fmt.Errorf("%s %s answered %d: the document lists no such route", x.Method, x.Path, x.Status)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && x.Status < 400 {
		return fmt.Errorf("%s %s: posd answered %d to a request the document refuses: %v", x.Method, x.Path, x.Status, err)
	}
	ct, _, _ := mime.ParseMediaType(x.RespHeader.Get("Content-Type"))
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: x.Status, Header: x.RespHeader,
		Body: io.NopCloser(bytes.NewReader(x.RespBody)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: ct == "text/event-stream",
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("%s %s: posd's %d answer is not the document's: %v\n%s", x.Method, x.Path, x.Status, err, clip(x.RespBody))
	}
	return nil
}

// CheckEvent holds one message of GET /v1/events (its data) to the
// document's Event schema.
func CheckEvent(data []byte) error {
	c, err := loadContract()
	if err != nil {
		return err
	}
	var s *openapi3.SchemaRef
	if c.doc.Components != nil {
		s = c.doc.Components.Schemas["Event"]
	}
	if s == nil {
		return errors.New("docs/openapi.yaml: no Event schema")
	}
	v, err := decodeJSON(data)
	if err != nil {
		return err
	}
	if err := s.Value.VisitJSON(v); err != nil {
		return fmt.Errorf("an event is not the document's Event: %v\n%s", err, clip(data))
	}
	return nil
}

func checkBareError(x Exchange) error {
	c, _ := loadContract()
	var s *openapi3.SchemaRef
	if c.doc.Components != nil {
		s = c.doc.Components.Schemas["Error"]
	}
	if s == nil {
		return errors.New("docs/openapi.yaml: no Error schema")
	}
	v, err := decodeJSON(x.RespBody)
	if err != nil {
		return fmt.Errorf("%s %s answered %d without the error shape: %s", x.Method, x.Path, x.Status, clip(x.RespBody))
	}
	if err := s.Value.VisitJSON(v); err != nil {
		return fmt.Errorf("%s %s: %d: %v", x.Method, x.Path, x.Status, err)
	}
	return nil
}

func clip(b []byte) string {
	s := string(b)
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return strings.TrimSpace(s)
}

var (
	violationsMu sync.Mutex
	violations   []string
)

// Hold checks an exchange and keeps what breaks the contract for the
// suite's end (ContractKept), so that traffic no test looks at itself is
// checked too.
func Hold(x Exchange) {
	if err := CheckExchange(x); err != nil {
		recordViolation(err)
	}
}

func recordViolation(err error) {
	violationsMu.Lock()
	defer violationsMu.Unlock()
	violations = append(violations, err.Error())
}

// ContractKept lists the exchanges of the suite that broke the contract
// and returns the suite's exit code for them: 0 when there were none.
func ContractKept() int {
	violationsMu.Lock()
	defer violationsMu.Unlock()
	for _, v := range violations {
		fmt.Println("CONTRACT: " + v)
	}
	if len(violations) > 0 {
		fmt.Printf("CONTRACT: %d exchanges are not what docs/openapi.yaml says\n", len(violations))
		return 1
	}
	return 0
}

func decodeJSON(b []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
