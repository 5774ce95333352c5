// Package config loads a service's configuration: defaults set in code, overridden by
// SWITCHYARD_* environment variables, overridden by command-line flags, then validated.
//
// A service declares its Config struct with a RegisterFlags method that binds every field to a
// flag (the flag's default is the field's default). The environment variable of a flag is its
// name upper-cased with dashes turned into underscores and the SWITCHYARD_ prefix: the flag
// -http-addr is SWITCHYARD_HTTP_ADDR.
package config

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/peterbourgon/ff/v3"
)

// EnvPrefix prefixes every configuration environment variable.
const EnvPrefix = "SWITCHYARD"

// Config is what a service's configuration struct implements.
type Config interface {
	// RegisterFlags binds every field to a flag on fs, with the field's default.
	RegisterFlags(fs *flag.FlagSet)
	// Validate returns an error naming the first invalid field, or nil.
	Validate() error
}

// Load parses args and the environment into cfg and validates it. The error names the bad
// field or flag in one line.
func Load(name string, cfg Config, args []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix(EnvPrefix)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// EnvName is the environment variable that sets the flag with the given name.
func EnvName(flagName string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// FieldError is a configuration error naming the flag (and so its environment variable).
type FieldError struct {
	Flag    string
	Message string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid -%s (%s): %s", e.Flag, EnvName(e.Flag), e.Message)
}

// Invalid returns a FieldError for the flag.
func Invalid(flagName, format string, args ...any) error {
	return &FieldError{Flag: flagName, Message: fmt.Sprintf(format, args...)}
}
