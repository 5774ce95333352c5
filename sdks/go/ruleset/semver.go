package ruleset

import (
	"cmp"
	"strconv"
	"strings"
)

// Semver is a parsed semantic version (semver.org 2.0). Build metadata is ignored for
// precedence, as the specification says.
type Semver struct {
	Major, Minor, Patch uint64
	Pre                 []string
}

// ParseSemver parses "MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]". Missing minor or patch
// components ("2", "2.1") are read as zero, so rules can say "2.1" without ceremony; a leading
// "v" is not accepted.
func ParseSemver(s string) (Semver, bool) {
	var v Semver
	if s == "" {
		return v, false
	}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if !validIdentifiers(s[i+1:], false) {
			return v, false
		}
		s = s[:i]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		pre := s[i+1:]
		if !validIdentifiers(pre, true) {
			return v, false
		}
		v.Pre = strings.Split(pre, ".")
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return v, false
	}
	nums := [3]uint64{}
	for i, p := range parts {
		n, ok := numericIdentifier(p)
		if !ok {
			return v, false
		}
		nums[i] = n
	}
	v.Major, v.Minor, v.Patch = nums[0], nums[1], nums[2]
	return v, true
}

func numericIdentifier(p string) (uint64, bool) {
	if p == "" || (len(p) > 1 && p[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(p, 10, 64)
	return n, err == nil
}

// digitsOnly reports whether a pre-release identifier is numeric (validation has ruled out
// leading zeros).
func digitsOnly(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return p != ""
}

func validIdentifiers(s string, noLeadingZeros bool) bool {
	if s == "" {
		return false
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		digits := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				digits = false
			default:
				return false
			}
		}
		if noLeadingZeros && digits && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// Compare returns -1, 0 or +1 as v is lower than, equal to or higher than w in semver precedence.
func (v Semver) Compare(w Semver) int {
	for _, d := range [3][2]uint64{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Patch, w.Patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	// A version without pre-release identifiers has higher precedence.
	switch {
	case len(v.Pre) == 0 && len(w.Pre) == 0:
		return 0
	case len(v.Pre) == 0:
		return 1
	case len(w.Pre) == 0:
		return -1
	}
	for i := 0; i < len(v.Pre) && i < len(w.Pre); i++ {
		a, b := v.Pre[i], w.Pre[i]
		aNum, bNum := digitsOnly(a), digitsOnly(b)
		switch {
		case aNum && bNum:
			// Numerically, whatever their size: without leading zeros the longer is larger.
			if c := cmp.Compare(len(a), len(b)); c != 0 {
				return c
			}
			if c := strings.Compare(a, b); c != 0 {
				return c
			}
		case aNum:
			return -1 // numeric identifiers have lower precedence than alphanumeric ones
		case bNum:
			return 1
		default:
			if c := strings.Compare(a, b); c != 0 {
				return c
			}
		}
	}
	switch {
	case len(v.Pre) < len(w.Pre):
		return -1
	case len(v.Pre) > len(w.Pre):
		return 1
	}
	return 0
}
