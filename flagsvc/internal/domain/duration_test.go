package domain

import (
	"encoding/json"
	"testing"
	"time"
)

// TestDurationJSON: durations come back as users write them ("168h", not "168h0m0s") and read
// back to the same value.
func TestDurationJSON(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{168 * time.Hour, `"168h"`},
		{90 * time.Minute, `"1h30m"`},
		{30 * time.Minute, `"30m"`},
		{time.Hour + time.Second, `"1h0m1s"`},
		{90 * time.Second, `"1m30s"`},
		{0, `"0s"`},
		{500 * time.Millisecond, `"500ms"`},
		{-2 * time.Hour, `"-2h"`},
	} {
		b, err := json.Marshal(Duration(c.d))
		if err != nil || string(b) != c.want {
			t.Errorf("%v: %s (%v), want %s", c.d, b, err, c.want)
			continue
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back.Std() != c.d {
			t.Errorf("%s read back as %v (%v), want %v", b, back.Std(), err, c.d)
		}
	}
}
