package controller_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/api"
)

// requestTypes are the bodies the API decodes, by the fuzzer's kind byte.
var requestTypes = []any{
	api.ClaimRequest{}, api.ExtendRequest{}, api.RevokeRequest{}, api.StepDownRequest{},
	api.PinRequest{}, api.UnpinRequest{}, api.ConfigChanges{}, api.LeaderSettingsChanges{},
	api.UnitStatusRequest{}, api.ApplicationStatusRequest{}, api.ApplicationVersionRequest{},
	api.RegisterUnitRequest{}, api.ResolvedRequest{}, api.JoinRequest{},
}

// FuzzDecodeRequest: decoding any bytes as any request body never panics,
// errors are one line, and whatever decodes re-encodes to a body that
// decodes to the same value (nothing half-parsed gets through). The seeds
// in testdata/fuzz/FuzzDecodeRequest run in every `go test`.
func FuzzDecodeRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		typ := reflect.TypeOf(requestTypes[int(kind)%len(requestTypes)])
		for _, optional := range []bool{false, true} {
			v := reflect.New(typ)
			err := controller.DecodeRequest(body, v.Interface(), optional)
			if err != nil {
				if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\r\n") {
					t.Fatalf("error is not one line: %q", msg)
				}
				continue
			}
			again, merr := json.Marshal(v.Interface())
			if merr != nil {
				t.Fatalf("cannot re-encode %#v: %v", v.Interface(), merr)
			}
			w := reflect.New(typ)
			if err := controller.DecodeRequest(again, w.Interface(), false); err != nil {
				t.Fatalf("re-encoded %s does not decode: %v", again, err)
			}
			if diff := cmp.Diff(v.Interface(), w.Interface()); diff != "" {
				t.Fatalf("round trip changed the request (-first +second):\n%s", diff)
			}
		}
	})
}
