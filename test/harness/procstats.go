package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcStats is a process's memory and CPU use read from /proc.
type ProcStats struct {
	// RSS is the resident set size now (VmRSS), in bytes.
	RSS uint64
	// PeakRSS is the highest resident set size so far (VmHWM), in bytes.
	PeakRSS uint64
	// RSSAnon is the anonymous part of RSS (RssAnon): the Go heap and
	// runtime, without the binary's mapped text pages.
	RSSAnon uint64
	// CPU is user plus system time consumed so far.
	CPU time.Duration
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// ReadProcStats reads /proc/PID/status and /proc/PID/stat.
func ReadProcStats(pid int) (ProcStats, error) {
	var st ProcStats
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, fmt.Errorf("reading process status: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch key {
		case "VmRSS":
			st.RSS, err = parseKB(val)
		case "VmHWM":
			st.PeakRSS, err = parseKB(val)
		case "RssAnon":
			st.RSSAnon, err = parseKB(val)
		}
		if err != nil {
			return st, err
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, fmt.Errorf("reading process stat: %w", err)
	}
	st.CPU, err = parseCPU(string(stat))
	return st, err
}

func parseKB(v string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing %q: %w", v, err)
	}
	return n * 1024, nil
}

// parseCPU reads utime and stime (fields 14 and 15) from /proc/PID/stat; the
// command name in field 2 may contain spaces, so fields count from its ')'.
func parseCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat line")
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat line")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing CPU ticks %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
