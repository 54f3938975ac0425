package termlog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	precious := filepath.Join(dir, "passwd")
	if err := os.WriteFile(precious, []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(precious, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		path    string
		wantErr error // nil: written
	}{
		{"new file is created", filepath.Join(dir, "new"), nil},
		{"empty file is written", empty, nil},
		{"symlink is not followed", link, ErrSymlink},
		{"file with data is not cut", precious, ErrNotEmpty},
		{"fifo with no reader does not block", fifo, ErrNotRegular},
		{"directory", dir, nil}, // EISDIR from open: any error will do
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Write(tt.path, "envoy-lifecycle exit 0: app exited")
			if tt.path == dir {
				if err == nil {
					t.Fatal("Write to a directory succeeded")
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Write(%s) got %v, want %v", tt.name, err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			got, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if want := "envoy-lifecycle exit 0: app exited\n"; string(got) != want {
				t.Errorf("file got %q, want %q", got, want)
			}
		})
	}
	if got, _ := os.ReadFile(precious); string(got) != "root:x:0:0::/root:/bin/sh\n" {
		t.Errorf("the symlink's target changed: %q", got)
	}
}

func TestWriteEmptyPath(t *testing.T) {
	if err := Write("", "x"); err != nil {
		t.Errorf("Write(\"\") got %v, want nil", err)
	}
}

func TestWriteDefaultNotCreated(t *testing.T) {
	if _, err := os.Lstat(Default); err == nil {
		t.Skipf("%s exists on this machine", Default)
	}
	if err := Write(Default, "x"); !errors.Is(err, ErrMissing) {
		t.Fatalf("Write(%s) got %v, want ErrMissing", Default, err)
	}
	if _, err := os.Lstat(Default); err == nil {
		t.Errorf("Write created %s", Default)
	}
}

func TestOneLine(t *testing.T) {
	long := strings.Repeat("é", MaxBytes)
	tests := []struct {
		name, in, want string
	}{
		{"plain", "exit 3: app exited", "exit 3: app exited"},
		{"newlines", "a\nb\r\nc", "a b  c"},
		{"tabs and escapes", "a\tb\x1b[31m", "a b [31m"},
	}
	for _, tt := range tests {
		if got := OneLine(tt.in); got != tt.want {
			t.Errorf("OneLine(%s) got %q, want %q", tt.name, got, tt.want)
		}
	}
	got := OneLine(long)
	if len(got) > MaxBytes-1 || !strings.HasSuffix(got, "...") || !strings.HasPrefix(got, "é") {
		t.Errorf("OneLine(long) got %d bytes ending %q", len(got), got[len(got)-5:])
	}
	if strings.ContainsRune(strings.TrimSuffix(got, "..."), '\uFFFD') {
		t.Error("OneLine cut a rune in half")
	}
}
