package daemon

import (
	"bytes"
	"context"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/config"
	"example.com/posd/internal/device"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/scanner"
)

// kindConfig parses and validates a file with one lane of these scanners
// and displays, as config.Load does.
func kindConfig(t *testing.T, scanners, displays string) config.Config {
	t.Helper()
	c, err := config.Parse([]byte(`
lanes:
  - id: L1
    device_info: POS01
    scanners: [` + scanners + `]
    displays: [` + displays + `]
`))
	require.NoError(t, err)
	_, err = c.Validate()
	require.NoError(t, err, "%s %s", scanners, displays)
	return c
}

// Each scanner kind's table entry is what builds it: from a minimal valid
// entry, a source of the kind's reader, opening nothing yet. A kind added
// to the table without an example here fails the test.
func TestEveryScannerKindBuilds(t *testing.T) {
	examples := map[string]struct {
		yaml string
		want scanner.Source
	}{
		"stdin":  {`{type: stdin}`, &scanner.Lines{}},
		"serial": {`{type: serial, port: /dev/ttyS99}`, &scanner.Serial{}},
		"evdev":  {`{type: evdev, name: "No Such Scanner"}`, &scanner.Evdev{}},
		"hid":    {`{type: hid, usb: "0c2e:0b6a"}`, &scanner.HID{}},
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(scannerKinds)), slices.Collect(maps.Keys(examples)), "one example per kind")
	require.Equal(t, slices.Sorted(maps.Keys(scannerKinds)), config.ScannerTypes(), "every kind registered in config")
	for name, ex := range examples {
		sc := kindConfig(t, ex.yaml, "").Lanes[0].Scanners[0]
		src := scannerSource(sc, IO{Stdin: strings.NewReader("")}, nil)
		require.NotNil(t, src, name)
		assert.Equal(t, reflect.TypeOf(ex.want), reflect.TypeOf(src), name)
		assert.Equal(t, scannerKinds[name].label(sc), sc.Label(), "%s: config's label is the kind's", name)
		assert.NotEmpty(t, sc.Label(), name)
	}

	// What the entries carry over.
	sc := kindConfig(t, `{type: serial, port: /dev/ttyS99, baud: 115200, scene: wave_code}`, "").Lanes[0].Scanners[0]
	ser := scannerSource(sc, IO{}, nil).(*scanner.Serial)
	assert.Equal(t, "/dev/ttyS99", ser.Name)
	assert.Equal(t, scanner.SceneWaveCode, ser.Scene)
	_, err := ser.Open()
	assert.ErrorContains(t, err, "/dev/ttyS99", "opened only when asked")
	sc = kindConfig(t, `{type: evdev, usb: "0c2e:0b61:X", layout: fr, key_gap: 80ms}`, "").Lanes[0].Scanners[0]
	ev := scannerSource(sc, IO{}, nil).(*scanner.Evdev)
	assert.Equal(t, "0c2e:0b61:X", ev.USB)
	assert.Equal(t, scanner.Layout("fr"), ev.Layout)
	assert.Equal(t, "80ms", ev.Gap.String())
}

// A type no kind has is never read as stdin: its source fails, as a
// configuration error, and reports the device gone.
func TestUnknownScannerTypeIsNotStdin(t *testing.T) {
	var states []string
	src := scannerSource(config.Scanner{Type: "laser", Scene: scanner.SceneBarCode}, IO{Stdin: strings.NewReader("1234567890123456789\n")},
		func(st device.State, detail string) { states = append(states, string(st)+" "+detail) })
	_, isLines := src.(*scanner.Lines)
	assert.False(t, isLines)
	emitted := 0
	err := src.Run(context.Background(), func(scanner.Scan) { emitted++ })
	require.Error(t, err)
	assert.ErrorIs(t, err, config.ErrConfig)
	assert.Contains(t, err.Error(), `scanner type "laser"`)
	assert.Zero(t, emitted)
	require.Len(t, states, 1)
	assert.True(t, strings.HasPrefix(states[0], "gone "), states[0])
}

// Each display kind's table entry is what builds it, from a minimal valid
// entry; lasting kinds (web) are built only with the lasting ones.
func TestEveryDisplayKindBuilds(t *testing.T) {
	examples := map[string]struct {
		yaml string
		want display.Display // nil: serves itself
	}{
		"terminal": {`{type: terminal}`, &display.Terminal{}},
		"vfd":      {`{type: vfd, port: /dev/ttyUSB99}`, &display.VFDDevice{}},
		"escpos":   {`{type: escpos, address: "127.0.0.1:1"}`, &display.Printer{}},
		"web":      {`{type: web}`, nil},
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(displayKinds)), slices.Collect(maps.Keys(examples)), "one example per kind")
	require.Equal(t, slices.Sorted(maps.Keys(displayKinds)), config.DisplayTypes(), "every kind registered in config")

	j := journaltest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // what build starts ends at once
	var wg sync.WaitGroup
	defer wg.Wait()
	for name, ex := range examples {
		cfg := kindConfig(t, `{type: stdin}`, ex.yaml)
		d := cfg.Lanes[0].Displays[0]
		e := &displayEnv{ctx: ctx, wg: &wg, cfg: cfg, hub: display.NewHub(), j: j, reg: device.NewRegistry(), stdout: &bytes.Buffer{},
			lane: "L1", log: zap.NewNop()}
		dev, _, err := displayKinds[name].build(e, d)
		require.NoError(t, err, name)
		assert.Equal(t, displayKinds[name].label(d), d.Name(), "%s: config's label is the kind's", name)
		if ex.want == nil {
			assert.Nil(t, dev, name)
			require.NotNil(t, e.web, name)
			assert.True(t, e.web.Lanes["L1"], name)
			assert.True(t, displayKinds[name].lasting, name)
			continue
		}
		require.NotNil(t, dev, name)
		assert.Equal(t, reflect.TypeOf(ex.want), reflect.TypeOf(dev), name)
		assert.False(t, displayKinds[name].lasting, name)
	}

	// startDisplays: the lasting kinds apart from the others.
	cfg := kindConfig(t, `{type: stdin}`, `{type: terminal}, {type: web}`)
	web, err := startDisplays(ctx, &wg, cfg, display.NewHub(), j, device.NewRegistry(), zap.NewNop(), &bytes.Buffer{}, false)
	require.NoError(t, err)
	assert.Nil(t, web, "a reload leaves the web display alone")
	web, err = startWebDisplays(ctx, &wg, cfg, display.NewHub(), zap.NewNop())
	require.NoError(t, err)
	require.NotNil(t, web)
	assert.Equal(t, map[string]bool{"L1": true}, web.Lanes)
}

// A display type no kind has is a configuration error, not a panic.
func TestUnknownDisplayTypeRefused(t *testing.T) {
	cfg := config.Config{Lanes: []config.Lane{{ID: "L1", Displays: []config.Display{{Type: "hologram"}}}}}
	var wg sync.WaitGroup
	_, err := startDisplays(context.Background(), &wg, cfg, display.NewHub(), nil, device.NewRegistry(), zap.NewNop(), &bytes.Buffer{}, false)
	require.Error(t, err)
	assert.ErrorIs(t, err, config.ErrConfig)
	assert.Contains(t, err.Error(), `type "hologram"`)
	wg.Wait()
}
