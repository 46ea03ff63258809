package raftnode_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(envProcNode); spec != "" {
		os.Exit(runProcNode(spec)) // this process is a node under test
	}
	goleak.VerifyTestMain(m)
}
