package report

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Machine describes where the run happened.
type Machine struct {
	Cores      int    `json:"cores"`
	CPU        string `json:"cpu"`
	MemTotalMB int    `json:"mem_total_mb"`
	GoVersion  string `json:"go_version"`
	Kernel     string `json:"kernel"`
	OS         string `json:"os"`
	// DataDirFS is the file system type under the benchmark's data
	// directories (raft logs, state files): "ext4", "tmpfs", ...
	DataDirFS string `json:"data_dir_fs"`
}

// ReadMachine describes this machine; dataDir is where the benchmarks
// keep their data. Fields it cannot read are left empty.
func ReadMachine(dataDir string) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, err := MemTotalKB(string(data)); err == nil {
			m.MemTotalMB = int(kb / 1024)
		}
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = field(string(data), "model name", ':')
	}
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		m.OS = strings.Trim(field(string(data), "PRETTY_NAME", '='), `"`)
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	var fs unix.Statfs_t
	if unix.Statfs(dataDir, &fs) == nil {
		m.DataDirFS = fsName(fs.Type)
	}
	return m
}

// MemTotalKB reads MemTotal (in kB) from the text of /proc/meminfo.
func MemTotalKB(meminfo string) (uint64, error) {
	v := field(meminfo, "MemTotal", ':')
	n, err := strconv.ParseUint(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot read MemTotal from /proc/meminfo: %q", v)
	}
	return n, nil
}

// field returns the trimmed value of the first "key<sep>value" line.
func field(text, key string, sep byte) string {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), string(sep))
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func fsName(magic int64) string {
	switch magic {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	}
	return fmt.Sprintf("0x%x", magic)
}
