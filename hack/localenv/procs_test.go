package main

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain name",
			data: "4242 (etcd) S 4200 4242 4200 0 -1 4194560 1 0 0 0 5 3 0 0 20 0 12 0 987654 0 0\n",
			want: procStat{comm: "etcd", state: 'S', ppid: 4200, start: 987654},
		},
		{
			name: "name with spaces and parentheses",
			data: "7 (a (b) c) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0",
			want: procStat{comm: "a (b) c", state: 'Z', ppid: 1, start: 55},
		},
		{name: "no parentheses", data: "7 etcd S 1", wantErr: true},
		{name: "too few fields", data: "7 (etcd) S 1 7 7", wantErr: true},
		{name: "bad start time", data: "7 (etcd) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 x 0 0", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat(tc.data)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseStat() error = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(procStat{})); diff != "" {
				t.Errorf("parseStat() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAlive(t *testing.T) {
	me, err := self("test", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !me.alive() {
		t.Errorf("%v: alive() = false for the running test", me)
	}
	reused := me
	reused.start++
	if reused.alive() {
		t.Errorf("alive() = true for pid %d with another start time: a reused pid must not count", me.pid)
	}
}

func TestPidsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	got, err := readPids(dir)
	if err != nil || len(got) != 0 {
		t.Fatalf("readPids() of a directory without the file = %v, %v; want nothing", got, err)
	}
	want := []proc{{name: "localenv", pid: 10, start: 100}, {name: "kube-apiserver", pid: 12, start: 130}}
	if err := writePids(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err = readPids(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(proc{})); diff != "" {
		t.Errorf("readPids() mismatch (-want +got):\n%s", diff)
	}
}
