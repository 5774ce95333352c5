package domain

import (
	"regexp"
	"strings"

	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

var colorPattern = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// ValidateEnvironment checks an environment's editable fields.
func ValidateEnvironment(e *Environment) error {
	if !ruleset.ValidKey(e.Key) {
		return errs.Invalid("key", "must be 1-%d characters of letters, digits, '.', '_' or '-', starting with a letter or digit", ruleset.MaxKeyLength)
	}
	if strings.TrimSpace(e.Name) == "" || len(e.Name) > MaxNameLength {
		return errs.Invalid("name", "is required (at most %d characters)", MaxNameLength)
	}
	if !colorPattern.MatchString(e.Color) {
		return errs.Invalid("color", "must be a hex color like #3b82f6")
	}
	return nil
}

// ValidateProject checks a project's editable fields.
func ValidateProject(p *Project) error {
	if !ruleset.ValidKey(p.Key) {
		return errs.Invalid("key", "must be 1-%d characters of letters, digits, '.', '_' or '-', starting with a letter or digit", ruleset.MaxKeyLength)
	}
	if strings.TrimSpace(p.Name) == "" || len(p.Name) > MaxNameLength {
		return errs.Invalid("name", "is required (at most %d characters)", MaxNameLength)
	}
	if len(p.Description) > MaxDescriptionLength {
		return errs.Invalid("description", "at most %d characters", MaxDescriptionLength)
	}
	return nil
}
