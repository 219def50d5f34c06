package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Machine describes where the numbers were taken.
type Machine struct {
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	RAM      int64  `json:"ram_bytes"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	FS       string `json:"fs"`        // filesystem type of the work directory
	FSDevice string `json:"fs_device"` // what is mounted there
	// Reclaim names what hands free guest memory back to a hypervisor
	// (a bound virtio-balloon, DAMON reclaiming physical memory), "" if
	// nothing does. On such a machine the first touch of memory freed
	// seconds earlier is a host page fault, which slows page-cache writes
	// and file creation and widens the spread between rounds.
	Reclaim string `json:"memory_reclaim,omitempty"`
}

func describeMachine(workDir string) Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), Go: runtime.Version(), FS: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				m.RAM = kb << 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.FS, m.FSDevice = mountOf(workDir)
	m.Reclaim = memoryReclaim()
	return m
}

func memoryReclaim() string {
	var found []string
	if bound, _ := filepath.Glob("/sys/bus/virtio/drivers/virtio_balloon/virtio*"); len(bound) > 0 {
		found = append(found, "virtio-balloon")
	}
	states, _ := filepath.Glob("/sys/kernel/mm/damon/admin/kdamonds/*/state")
	for _, st := range states {
		b, err := os.ReadFile(st)
		if err != nil || strings.TrimSpace(string(b)) != "on" {
			continue
		}
		ops, _ := filepath.Glob(filepath.Join(filepath.Dir(st), "contexts", "*", "operations"))
		for _, op := range ops {
			if b, err := os.ReadFile(op); err == nil && strings.TrimSpace(string(b)) == "paddr" {
				found = append(found, "DAMON on physical memory")
				break
			}
		}
		break
	}
	return strings.Join(found, ", ")
}

// mountOf finds the filesystem type and source of the mount holding dir:
// the longest mount point in /proc/self/mountinfo that contains it.
func mountOf(dir string) (fstype, source string) {
	fstype, source = "unknown", ""
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	best := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 2 {
			continue
		}
		mp := unescapeMount(fields[4])
		if !within(abs, mp) || len(mp) <= best {
			continue
		}
		best, fstype, source = len(mp), tail[0], tail[1]
	}
	return
}

func within(path, mountpoint string) bool {
	if mountpoint == "/" {
		return true
	}
	return path == mountpoint || strings.HasPrefix(path, mountpoint+"/")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// freeSpace is what an unprivileged writer can still put on dir's
// filesystem.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
