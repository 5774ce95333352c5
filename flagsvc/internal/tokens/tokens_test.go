package tokens

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/pg"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

// TestRevokeDuringVerificationIsNotCached: a verification that read the token before a
// revocation committed must not put the token in the cache afterwards (it would keep working
// for CacheTTL). The clock hook runs inside verify, after the database read.
func TestRevokeDuringVerificationIsNotCached(t *testing.T) {
	ctx := t.Context()
	pool, err := pg.Connect(ctx, testenv.PostgresDB(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if _, err := st.Migrate(ctx, log); err != nil {
		t.Fatal(err)
	}
	var tk domain.APIToken
	secret := RandomString(secretLength)
	err = st.InTx(ctx, func(tx *store.Tx) error {
		org, err := tx.CreateOrg(ctx, "acme", "Acme")
		if err != nil {
			return err
		}
		tk, err = tx.InsertAPIToken(ctx, domain.APIToken{OrgID: org.ID, TokenID: RandomString(idLength), Kind: "service", Name: "ci", Role: domain.RoleViewer},
			Hash(secret), "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	token := Format("service", tk.TokenID, secret)
	s := New(st, log)
	admin := audit.Caller{P: &access.Principal{OrgID: tk.OrgID, Role: domain.RoleOwner, Actor: domain.Actor{Type: "system", ID: "test"}}}
	calls := 0
	s.now = func() time.Time {
		// Call 1 is Authenticate's, call 2 verify's (after it read the row): revoke there.
		if calls++; calls == 2 {
			if err := s.Revoke(ctx, admin, tk.ID); err != nil {
				t.Error(err)
			}
		}
		return time.Now()
	}
	if _, err := s.Authenticate(ctx, token); err != nil {
		t.Fatalf("in-flight verification: %v", err)
	}
	if _, err := s.Authenticate(ctx, token); err == nil {
		t.Fatal("a token revoked while it was being verified is still accepted (cached)")
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"0b7c8a2e-5f1d-4c3b-9a7e-2d6f8e1c4b3a": true,
		"0B7C8A2E-5F1D-4C3B-9A7E-2D6F8E1C4B3A": true,
		"":                                     false,
		"sy_svc_abcdefghijkl_" + RandomString(secretLength): false,
		"0b7c8a2e-5f1d-4c3b-9a7e-2d6f8e1c4b3g":              false,
		"0b7c8a2e05f1d-4c3b-9a7e-2d6f8e1c4b3a":              false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}
