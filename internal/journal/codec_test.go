package journal

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// exampleOrder and exampleCharge are shaped like a final poller.Order's and
// checkout.Charge's JSON (field for field, as json.Marshal writes them).
func exampleOrder(i int, chargeID string, at time.Time) []byte {
	id := orderID(i)
	sum := sha256.Sum256([]byte(id))
	return fmt.Appendf(nil, `{"mch_trade_id":%q,"charge_id":%q,"lane":"L1","device_info":"POS01",`+
		`"pay_type":"alipay.micro","wallet":"alipay","scene":"bar_code","total_fee":%d,"subject":"goods",`+
		`"body":"goods","client_ip":"127.0.0.1","time_start":%d,"code_masked":"**************1234",`+
		`"code_sha256":"%x","state":"paid","phase":"done","queries":0,"reverses":0,"tries":0,"trade_state":0,`+
		`"trade_id":"T%s","out_trade_id":"W%s","next_at":"0001-01-01T00:00:00Z","created_at":%q,`+
		`"updated_at":%q,"finished_at":%q}`,
		id, chargeID, 100+i%5000, at.Unix(), sum, id, id, stamp(at), stamp(at.Add(time.Second)), stamp(at.Add(time.Second)))
}

func exampleCharge(i int, chargeID string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"id":%q,"lane":"L1","total_fee":%d,"subject":"goods","body":"goods",`+
		`"state":"paid","attempt_ids":[%q],"created_at":%q,"expires_at":%q,"updated_at":%q}`,
		chargeID, 100+i%5000, orderID(i), stamp(at), stamp(at.Add(10*time.Minute)), stamp(at.Add(time.Second)))
}

func orderID(i int) string { return fmt.Sprintf("S001_POS01_G%08d", i) }

// randomChargeID is made as checkout's newChargeID makes one.
func randomChargeID(r *rand.Rand) string {
	var b [13]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return "CH" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])[:20]
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

var exampleAt = time.Date(2026, 11, 26, 17, 57, 34, 102317657, time.UTC)

func storedValue(t *testing.T, j *Journal, bucket, key string) []byte {
	t.Helper()
	var v []byte
	require.NoError(t, j.db.View(func(tx *bolt.Tx) error {
		v = append(v, tx.Bucket([]byte(bucket)).Get([]byte(key))...)
		return nil
	}))
	return v
}

func putStored(t *testing.T, j *Journal, bucket, key string, v []byte) {
	t.Helper()
	require.NoError(t, j.db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Put([]byte(key), v) }))
}

// Every read hands back the JSON Put was given, byte for byte, while the
// file holds a done record compressed.
func TestCompressedRoundTrip(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "j.db"))
	require.NoError(t, err)
	defer j.Close()
	const oid, cid = "S001_POS01_G00000007", "CHGS001_POS01_G00000007"
	order, charge := exampleOrder(7, cid, exampleAt), exampleCharge(7, cid, exampleAt)
	open := []byte(`{"id":"CHlive","lane":"L1","state":"paying","attempt_ids":[]}`)
	require.NoError(t, j.Update(func(tx *Tx) error {
		for _, p := range []struct {
			bucket, key string
			v           []byte
		}{{orderBucket, oid, order}, {chargeBucket, cid, charge}, {chargeBucket, "CHlive", open}} {
			if err := tx.putJSON(p.bucket, p.key, json.RawMessage(p.v)); err != nil {
				return err
			}
		}
		return nil
	}))
	for _, c := range []struct {
		bucket, key string
		want        []byte
	}{{orderBucket, oid, order}, {chargeBucket, cid, charge}} {
		stored := storedValue(t, j, c.bucket, c.key)
		require.Equal(t, byte(formatFlate), stored[0])
		t.Logf("%s: %d bytes of JSON stored in %d", c.bucket, len(c.want), len(stored))
		require.Less(t, len(stored), len(c.want)/3)

		var got json.RawMessage
		require.NoError(t, j.View(func(tx *Tx) error {
			ok, err := tx.get(c.bucket, c.key, &got)
			require.True(t, ok)
			return err
		}))
		require.Equal(t, string(c.want), string(got), "Get")
		seen := map[string]string{}
		require.NoError(t, j.View(func(tx *Tx) error {
			if err := tx.forEach(c.bucket, func(k string, v []byte) error { seen["each "+k] = string(v); return nil }); err != nil {
				return err
			}
			return tx.forEachPrefix(c.bucket, c.key[:6], func(k string, v []byte) error { seen["prefix "+k] = string(v); return nil })
		}))
		require.Equal(t, string(c.want), seen["each "+c.key], "ForEach")
		require.Equal(t, string(c.want), seen["prefix "+c.key], "ForEachPrefix")
	}
	var gotLive []string
	require.NoError(t, j.View(func(tx *Tx) error {
		return tx.forEachLive(chargeBucket, func(k string, v []byte) error { gotLive = append(gotLive, k+" "+string(v)); return nil })
	}))
	require.Equal(t, []string{"CHlive " + string(open)}, gotLive, "ForEachLive")
	require.Equal(t, byte('{'), storedValue(t, j, chargeBucket, "CHlive")[0], "an open record, rewritten at each step, is stored plain")
}

// What is on disk reads forever: a value written with the first dictionary.
func TestCompressedFormatIsFixed(t *testing.T) {
	stored, err := hex.DecodeString("01c217c3ee06106048d0bfe8e61a99e91a1aea1a9985189a5b999a5b199b4629d502020000ffff")
	require.NoError(t, err)
	js, err := decode(stored)
	require.NoError(t, err, "a changed dictionary needs a format byte of its own")
	require.Equal(t, `{"mch_trade_id":"S001_POS01_G00000001","state":"paid","phase":"done","finished_at":"2026-11-26T17:57:35Z"}`, string(js))
}

// A journal written before values were compressed holds plain JSON: it is
// read as it is, and its index entries move when the record is written
// again (compressed).
func TestPlainJSONStillRead(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "j.db"))
	require.NoError(t, err)
	defer j.Close()
	plain := []byte(`{"mch_trade_id":"OLD1","phase":"query","updated_at":"2026-01-02T03:04:05Z"}`)
	putStored(t, j, orderBucket, "OLD1", plain)
	putStored(t, j, liveIndex, "orders/OLD1", nil) // as the old Put indexed it

	var o struct {
		ID    string `json:"mch_trade_id"`
		Phase string `json:"phase"`
	}
	var all, lives []string
	require.NoError(t, j.View(func(tx *Tx) error {
		ok, err := tx.get(orderBucket, "OLD1", &o)
		require.True(t, ok)
		if err != nil {
			return err
		}
		if err := tx.forEach(orderBucket, func(_ string, v []byte) error { all = append(all, string(v)); return nil }); err != nil {
			return err
		}
		return tx.forEachLive(orderBucket, func(_ string, v []byte) error { lives = append(lives, string(v)); return nil })
	}))
	require.Equal(t, "query", o.Phase)
	require.Equal(t, []string{string(plain)}, all)
	require.Equal(t, []string{string(plain)}, lives)

	final := rec{Phase: "done", FinishedAt: exampleAt}
	require.NoError(t, j.Update(func(tx *Tx) error { return tx.putJSON(orderBucket, "OLD1", final) }))
	require.Equal(t, byte(formatFlate), storedValue(t, j, orderBucket, "OLD1")[0], "written again, compressed")
	require.Empty(t, live(t, j, orderBucket), "the old value's live entry is gone")
	require.NoError(t, j.View(func(tx *Tx) error {
		ids, _ := tx.doneBefore(orderBucket, exampleAt.Add(time.Second), "", 10)
		require.Equal(t, []string{"OLD1"}, ids)
		return nil
	}))
}

// A compressed value that is damaged is an error for whoever reads it,
// never a panic and never JSON that is not what was written.
func TestCorruptCompressedValue(t *testing.T) {
	order := exampleOrder(1, "CHGS001_POS01_G00000001", exampleAt)
	good := encode(order)
	js, err := decode(good)
	require.NoError(t, err)
	require.Equal(t, string(order), string(js))

	for name, v := range map[string][]byte{
		"reserved block type": {formatFlate, 0xff, 0xff, 0xff},
		"format byte only":    {formatFlate},
		"truncated":           good[:len(good)/2],
		"bytes after its end": append(append([]byte{}, good...), 0, 0),
	} {
		j, err := Open(filepath.Join(t.TempDir(), "j.db"))
		require.NoError(t, err)
		putStored(t, j, orderBucket, "BAD", v)
		putStored(t, j, liveIndex, "orders/BAD", nil)
		require.NoError(t, j.View(func(tx *Tx) error {
			ok, err := tx.get(orderBucket, "BAD", &rec{})
			require.True(t, ok, name)
			require.ErrorIs(t, err, ErrDamaged, name)
			require.ErrorContains(t, tx.forEach(orderBucket, func(string, []byte) error { return nil }), "BAD", name)
			require.ErrorIs(t, tx.forEachLive(orderBucket, func(string, []byte) error { return nil }), ErrDamaged, name)
			return nil
		}))
		// The record can still be written over (its old index entries are
		// unknown: left as they are).
		require.NoError(t, j.Update(func(tx *Tx) error { return tx.putJSON(orderBucket, "BAD", rec{Phase: "pay"}) }), name)
		require.NoError(t, j.Close())
	}

	// Every single damaged byte and every cut: an error or some bytes, and
	// no panic.
	for i := 1; i < len(good); i++ {
		_, _ = decode(good[:i])
		for _, x := range []byte{0x01, 0x80, 0xff} {
			bad := append([]byte{}, good...)
			bad[i] ^= x
			_, _ = decode(bad)
		}
	}
}

// The measure the compression and the fill are for: bytes of file per
// final order, with its charge and its code's index entry. orderBucket come in
// increasing order, as a lane numbers them; charge ids are random, as
// the lane makes them. bbolt sizes a file under 16 MB to a power of two,
// and grows a larger one 16 MB ahead of its pages: the pages in use are
// the figure that holds for a long history (make bench-journal measures
// the file of 400,000).
func TestBytesPerOrder(t *testing.T) {
	const n, batch = 5_000, 100
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := OpenWith(path, Options{NoSync: true})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(1, 2))
	var jsonBytes int
	for i := 0; i < n; i += batch {
		require.NoError(t, j.Update(func(tx *Tx) error {
			for k := i; k < i+batch; k++ {
				at := exampleAt.Add(time.Duration(k) * 7919 * time.Millisecond)
				id, cid := orderID(k), randomChargeID(r)
				o, c := exampleOrder(k, cid, at), exampleCharge(k, cid, at)
				jsonBytes += len(o) + len(c)
				sum := sha256.Sum256([]byte(id))
				if err := tx.putJSON(orderBucket, id, json.RawMessage(o)); err != nil {
					return err
				}
				if err := tx.putJSON(chargeBucket, cid, json.RawMessage(c)); err != nil {
					return err
				}
				if err := tx.putString(codeBucket, hex.EncodeToString(sum[:]), id); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	used := j.Size()
	require.NoError(t, j.Close())
	st, err := os.Stat(path)
	require.NoError(t, err)
	perOrder := float64(st.Size()) / n
	t.Logf("%d orders: file %d bytes, %.0f bytes per order (pages in use %.0f per order; JSON %d per order)",
		n, st.Size(), perOrder, float64(used)/n, jsonBytes/n)
	require.Less(t, float64(used)/n, 1000.0)
}

// BenchmarkPutOrder is the journal's own cost of writing and reading back
// a final order (compressed), without the commit.
func BenchmarkPutOrder(b *testing.B) {
	j, err := OpenWith(filepath.Join(b.TempDir(), "j.db"), Options{NoSync: true})
	require.NoError(b, err)
	defer j.Close()
	o := json.RawMessage(exampleOrder(1, "CHGS001_POS01_G00000001", exampleAt))
	var got json.RawMessage
	b.ReportAllocs()
	err = j.Update(func(tx *Tx) error {
		for b.Loop() {
			if err := tx.putJSON(orderBucket, "S001_POS01_G00000001", o); err != nil {
				return err
			}
			if _, err := tx.get(orderBucket, "S001_POS01_G00000001", &got); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(b, err)
}
