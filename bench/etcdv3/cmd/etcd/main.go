// Command etcd is etcd's own server, built from go.etcd.io/etcd/server/v3
// at the version this module's go.mod pins: the same main as the released
// etcd binary (server/v3's main.go, which runs etcdmain and, under it,
// the embed package), so its flags and defaults (fsync on, snapshot
// count, heartbeat and election timeouts) are the release's. Benchmark B9
// (bench/etcd_baseline.go of the main module) builds and runs it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
