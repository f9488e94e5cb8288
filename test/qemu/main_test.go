package qemu

import (
	"os"
	"testing"

	"example.com/posd/test/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m, nil)) }
