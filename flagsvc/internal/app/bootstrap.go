package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchyard-io/switchyard/platform/config"
)

// BootstrapConfig adds the bootstrap command's flags to the service's.
type BootstrapConfig struct {
	*Config
	OrgKey    string
	OrgName   string
	Email     string
	TokenFile string
}

// RegisterFlags implements config.Config.
func (b *BootstrapConfig) RegisterFlags(fs *flag.FlagSet) {
	b.Config.RegisterFlags(fs)
	fs.StringVar(&b.OrgKey, "org", "demo", "organization key")
	fs.StringVar(&b.OrgName, "org-name", "Demo Inc.", "organization name")
	fs.StringVar(&b.Email, "owner-email", "owner@example.com", "email of the first owner")
	fs.StringVar(&b.TokenFile, "token-file", ".data/admin-token", "where to write the owner's API token (mode 0600)")
}

// Validate implements config.Config.
func (b *BootstrapConfig) Validate() error {
	if b.TokenFile == "" {
		return config.Invalid("token-file", "is required")
	}
	return b.Config.Validate()
}

// Bootstrap creates the organization and its owner if missing and makes sure token-file holds
// a working owner token. Running it again changes nothing while the token still works.
func Bootstrap(ctx context.Context, a *App, b BootstrapConfig, out io.Writer) error {
	if raw, err := os.ReadFile(b.TokenFile); err == nil {
		if p, err := a.Tokens.Authenticate(ctx, strings.TrimSpace(string(raw))); err == nil && p.UserID != "" {
			fmt.Fprintf(out, "bootstrap: %s already holds a working owner token\n", b.TokenFile)
			_, err := a.Services.Orgs.Bootstrap(ctx, b.OrgKey, b.OrgName, b.Email, false)
			return err
		}
	}
	res, err := a.Services.Orgs.Bootstrap(ctx, b.OrgKey, b.OrgName, b.Email, true)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(b.TokenFile), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(b.TokenFile, []byte(res.Token+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(out, "bootstrap: organization %q, owner %s; API token written to %s\n", res.Organization.Key, res.Owner.Email, b.TokenFile)
	return nil
}
