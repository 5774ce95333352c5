package errs

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// RefuseNUL returns an Invalid error naming the first string of a JSON document (its field
// path, for example "targets[0].values[1]"; an object key counts as its own field) that
// contains the NUL character, or nil. Postgres stores neither NUL in text nor \u0000 in jsonb,
// so such input is refused with the field named instead of failing as an internal error when
// it is written. Documents without a \u0000 escape (nearly all) are not decoded again.
func RefuseNUL(doc []byte) error {
	if !bytes.Contains(doc, []byte(`\u0000`)) {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil // not a document this check can read; the decoder reports it
	}
	if field, found := findNUL("", v); found {
		return Invalid(field, "must not contain the NUL character (\\u0000)")
	}
	return nil
}

func findNUL(path string, v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return path, strings.IndexByte(v, 0) >= 0
	case []any:
		for i, e := range v {
			if p, found := findNUL(path+"["+strconv.Itoa(i)+"]", e); found {
				return p, true
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys) // the first in a stable order
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if strings.IndexByte(k, 0) >= 0 {
				return p, true
			}
			if p, found := findNUL(p, v[k]); found {
				return p, true
			}
		}
	}
	return "", false
}
