package journal

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"runtime"
)

// orderBucket and charges are the journal's bulk (one of each per scan, kept
// for the retention), and their JSON is mostly field names and the same
// few values: stored as it was, with bbolt's pages, a final order took
// about 4 KB of file. Done ones are stored as a format byte and the raw
// DEFLATE of their JSON against a dictionary of typical records, so that
// even a single record finds its names and common values in the window.
// JSON never begins with a control byte, so a value that does not begin
// with formatFlate is plain JSON, as every journal before this held it:
// both are read, and nothing is migrated. A record still being driven is
// written plain (tx.go, putRecord): it is rewritten at every step.
const formatFlate = 0x01

// dictText is what a compressed value's window starts with. Changing it
// makes every value written before unreadable: add a format byte instead.
// DEFLATE codes a near match in fewer bits, so the commonest text comes
// last: a final order, and before it a charge; rarer fields and values
// first. The names are those of money.Order and money.Charge, copied
// (the journal knows nothing of its callers' types); the values, the
// shipped configuration's.
const dictText = `"attach":"","op_user_id":"","goods_tag":"","adopt":true,"seen":true,` +
	`"reverse_sent":true,"not_sent":true,"refund_unknown":true,"abort":true,"refund_sends":1,` +
	`"refund_missing":1,"refund_id":"","refund_by":"","err_msg":"","reason":"","resolution":"",` +
	`"idempotency_key":"","fixed":true,"aborting":true,"state":"paying","declined","reversed",` +
	`"closed","failed","unknown","refunded","canceled","awaiting_scan","needs_attention",` +
	`"phase":"pay","query","check","reverse","fallback_query","close","refund","refund_query",` +
	`"verify","confirm","reconcile","attention","pay_type":"wechat.micro","wallet":"wechat",` +
	`{"id":"CH","lane":"L1","total_fee":100,"subject":"goods","body":"goods","state":"paid",` +
	`"attempt_ids":["S001_POS01_"],"created_at":"20","expires_at":"20","updated_at":"20"}` +
	`{"mch_trade_id":"S001_POS01_","charge_id":"CH","lane":"L1","device_info":"POS01",` +
	`"pay_type":"alipay.micro","wallet":"alipay","scene":"bar_code","total_fee":100,` +
	`"subject":"goods","body":"goods","client_ip":"127.0.0.1","time_start":17,` +
	`"code_masked":"**************","code_sha256":"","state":"paid","phase":"done",` +
	`"queries":0,"reverses":0,"tries":0,"trade_state":0,"trade_id":"","out_trade_id":"",` +
	`"next_at":"0001-01-01T00:00:00Z","created_at":"20","updated_at":"20","finished_at":"20"}`

var dict = []byte(dictText)

// compressed reports whether a bucket's values are stored compressed.
func compressed(bucket string) bool { return bucket == orderBucket || bucket == chargeBucket }

// A flate.Writer is 800 KB and a reader 40 KB: made for each goroutine
// that needs one at the same time, not for each value, and kept. A
// sync.Pool would let the collector take them: under posd's soft memory
// limit it collects often, and every compression then made a new 800 KB
// writer (the 10,000-order poller benchmark's calls went seconds late).
// Resetting a writer still clears its 640 KB of hash tables: about half
// of encode's 25 µs.
var (
	deflaters = newKeep(func() *flate.Writer {
		w, err := flate.NewWriterDict(nil, flate.BestCompression, dict)
		if err != nil {
			panic(err) // only for a level out of range
		}
		return w
	})
	inflaters = newKeep(func() *inflater {
		in := new(inflater)
		in.r = flate.NewReaderDict(&in.src, dict)
		return in
	})
)

// keep holds up to a few values for reuse, past any collection; more are
// made when more goroutines need one at once, and dropped after.
type keep[T any] struct {
	free chan T
	make func() T
}

func newKeep[T any](mk func() T) *keep[T] {
	return &keep[T]{free: make(chan T, 2*runtime.GOMAXPROCS(0)), make: mk}
}

func (k *keep[T]) Get() T {
	select {
	case v := <-k.free:
		return v
	default:
		return k.make()
	}
}

func (k *keep[T]) Put(v T) {
	select {
	case k.free <- v:
	default:
	}
}

type inflater struct {
	src bytes.Reader
	r   io.ReadCloser
}

// encode returns the stored form of a record's JSON.
func encode(js []byte) []byte {
	w := deflaters.Get()
	defer deflaters.Put(w)
	out := bytes.NewBuffer(make([]byte, 0, 64+len(js)/2))
	out.WriteByte(formatFlate)
	w.Reset(out)
	// Writes to a bytes.Buffer do not fail.
	_, _ = w.Write(js)
	_ = w.Close()
	return out.Bytes()
}

// decode returns the JSON of a stored value, plain or compressed. A
// compressed value that does not inflate whole is ErrDamaged.
func decode(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != formatFlate {
		return v, nil
	}
	in := inflaters.Get()
	defer func() {
		in.src.Reset(nil) // v may be bbolt's mapping, unmapped after the transaction
		inflaters.Put(in)
	}()
	in.src.Reset(v[1:])
	if err := in.r.(flate.Resetter).Reset(&in.src, dict); err != nil {
		return nil, fmt.Errorf("%w: compressed value: %v", ErrDamaged, err)
	}
	js := make([]byte, 0, 6*len(v)) // about the usual ratio: one allocation
	for {
		if len(js) == cap(js) {
			js = append(js, 0)[:len(js)]
		}
		n, err := in.r.Read(js[len(js):cap(js)])
		js = js[:len(js)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: compressed value: %v", ErrDamaged, err)
		}
	}
	// The reader reads a byte at a time from a bytes.Reader, so nothing is
	// left of a value we wrote: anything left is damage.
	if in.src.Len() != 0 {
		return nil, fmt.Errorf("%w: compressed value: %d bytes after its end", ErrDamaged, in.src.Len())
	}
	return js, nil
}
