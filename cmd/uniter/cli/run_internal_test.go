package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestActionParams(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte("out: backup.tar\nfile:\n  kind: gz\n  level: 3\nwhen: 2026-01-01\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"list.yaml", "bad.yaml", "keys.yaml", "empty.yaml"} {
		body := map[string]string{"list.yaml": "- a\n", "bad.yaml": "a: [\n", "keys.yaml": "1: x\n", "empty.yaml": ""}[name]
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		file       string
		args       []string
		stringArgs bool
		want       map[string]any
		usage      bool   // a usage error (exit 2)
		wantErr    string // else a runtime error (exit 1)
	}{
		{name: "none", want: map[string]any{}},
		{name: "YAML values (empty: an empty string)", args: []string{"n=3", "f=1.5", "b=true", "s=hello", "e=", "l=[1, a]", "q='3'"},
			want: map[string]any{"n": 3, "f": 1.5, "b": true, "s": "hello", "e": "", "l": []any{1, "a"}, "q": "3"}},
		{name: "string args", args: []string{"n=3", "b=true", "e="}, stringArgs: true,
			want: map[string]any{"n": "3", "b": "true", "e": ""}},
		{name: "split at the first =", args: []string{"url=http://x/?a=b"}, want: map[string]any{"url": "http://x/?a=b"}},
		{name: "nested", args: []string{"file.kind=xz", "file.opts.fast=true", "snake_case=1"},
			want: map[string]any{"file": map[string]any{"kind": "xz", "opts": map[string]any{"fast": true}}, "snake_case": 1}},
		{name: "file, then arguments win", file: file, args: []string{"file.kind=xz", "out=x.tar"},
			want: map[string]any{"out": "x.tar", "file": map[string]any{"kind": "xz", "level": 3}, "when": "2026-01-01T00:00:00Z"}},
		{name: "an argument replaces a value with a map", file: file, args: []string{"out.name=y"},
			want: map[string]any{"out": map[string]any{"name": "y"}, "file": map[string]any{"kind": "gz", "level": 3}, "when": "2026-01-01T00:00:00Z"}},
		{name: "empty file", file: filepath.Join(dir, "empty.yaml"), want: map[string]any{}},
		{name: "no =", args: []string{"name"}, usage: true, wantErr: `argument "name" must be of the form key...=value`},
		{name: "upper case key", args: []string{"Name=x"}, usage: true,
			wantErr: `key "Name" must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens, underscores and periods`},
		{name: "empty key part", args: []string{"a..b=x"}, usage: true, wantErr: `key ""`},
		{name: "trailing hyphen", args: []string{"a-=x"}, usage: true, wantErr: `key "a-"`},
		{name: "bad YAML value", args: []string{"a=[1"}, usage: true, wantErr: `value of "a" is not valid YAML (use --string-args for plain strings)`},
		{name: "missing file", file: filepath.Join(dir, "nope.yaml"), wantErr: "cannot read params file: open"},
		{name: "file not a map", file: filepath.Join(dir, "list.yaml"), wantErr: "list.yaml: not a YAML map"},
		{name: "file not YAML", file: filepath.Join(dir, "bad.yaml"), wantErr: "bad.yaml: yaml:"},
		{name: "file with a non-string key", file: filepath.Join(dir, "keys.yaml"), wantErr: "map keyed with non-string value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := actionParams(tt.file, tt.args, tt.stringArgs)
			var ue *UsageError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			case tt.wantErr != "" && errors.As(err, &ue) != tt.usage:
				t.Fatalf("error %v: usage error %v, want %v", err, !tt.usage, tt.usage)
			}
			if diff := cmp.Diff(tt.want, got); tt.wantErr == "" && diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
		})
	}
}
