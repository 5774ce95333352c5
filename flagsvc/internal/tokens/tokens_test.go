package tokens

import (
	"fmt"
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
	st, log := testStore(t)
	secret := RandomString(secretLength)
	tk := insertToken(t, st, domain.APIToken{OrgID: newOrg(t, st), Kind: "service", Name: "ci", Role: domain.RoleViewer}, secret)
	token := Format("service", tk.TokenID, secret)
	s := New(st, log)
	admin := audit.Caller{P: &access.Principal{OrgID: tk.OrgID, Role: domain.RoleOwner, Actor: domain.Actor{Type: "system", ID: "test"}}}
	calls := 0
	s.now = func() time.Time {
		// Call 1 is Authenticate's, call 2 verify's (after it read the row): revoke there.
		if calls++; calls == 2 {
			if err := s.Revoke(ctx, admin, tk.ID, false); err != nil {
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

// TestRevocationWaitsForATokenBeingMadeWithIt: a token being created with another holds that
// one (LockLiveAPIToken) until it commits; revoking the other meanwhile waits, then revokes the
// new token too. Without the lock the revocation would end first and the new token escape it.
func TestRevocationWaitsForATokenBeingMadeWithIt(t *testing.T) {
	ctx := t.Context()
	st, _ := testStore(t)
	org := newOrg(t, st)
	maker := insertToken(t, st, domain.APIToken{OrgID: org, Kind: "service", Name: "maker", Role: domain.RoleAdmin}, RandomString(secretLength))

	held, release, created := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var made domain.APIToken
	go func() {
		created <- st.InTx(ctx, func(tx *store.Tx) error {
			live, err := tx.LockLiveAPIToken(ctx, org, maker.ID, time.Now())
			if err != nil || !live {
				close(held)
				return fmt.Errorf("maker live %v: %w", live, err)
			}
			made, err = tx.InsertAPIToken(ctx, domain.APIToken{OrgID: org, TokenID: RandomString(idLength), Kind: "service", Name: "made",
				Role: domain.RoleViewer, CreatedByToken: maker.ID}, Hash(RandomString(secretLength)), "")
			close(held)
			<-release
			return err
		})
	}()
	<-held
	type outcome struct {
		revoked []domain.APIToken
		err     error
	}
	revoking := make(chan outcome, 1)
	go func() {
		var o outcome
		o.err = st.InTx(ctx, func(tx *store.Tx) (err error) {
			o.revoked, err = tx.RevokeAPIToken(ctx, org, maker.ID, true)
			return err
		})
		revoking <- o
	}()
	// The revocation must now wait for the creation's lock.
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case o := <-revoking:
			close(release)
			t.Fatalf("the revocation ended (revoked %d, err %v) while a token was being made with the revoked one", len(o.revoked), o.err)
		default:
		}
		var waiting int
		if err := st.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE 'UPDATE api_tokens%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("the revocation neither waited nor ended")
		}
		time.Sleep(5 * time.Millisecond) // the poll's interval
	}
	close(release)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	o := <-revoking
	if o.err != nil {
		t.Fatal(o.err)
	}
	if len(o.revoked) != 1 || o.revoked[0].ID != made.ID {
		t.Fatalf("revoked with the maker: %+v, want the token made with it (%s)", o.revoked, made.ID)
	}
	var revokedAt *time.Time
	if err := st.Pool.QueryRow(ctx, `SELECT revoked_at FROM api_tokens WHERE id = $1`, made.ID).Scan(&revokedAt); err != nil || revokedAt == nil {
		t.Fatalf("the token made with the maker is not revoked (%v)", err)
	}
}

// testStore connects to a fresh, migrated database.
func testStore(t *testing.T) (*store.Store, *slog.Logger) {
	t.Helper()
	pool, err := pg.Connect(t.Context(), testenv.PostgresDB(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if _, err := st.Migrate(t.Context(), log); err != nil {
		t.Fatal(err)
	}
	return st, log
}

// newOrg creates an organization and returns its id.
func newOrg(t *testing.T, st *store.Store) string {
	t.Helper()
	var id string
	err := st.InTx(t.Context(), func(tx *store.Tx) error {
		org, err := tx.CreateOrg(t.Context(), "acme", "Acme")
		id = org.ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// insertToken stores tk (a new token id) with secret.
func insertToken(t *testing.T, st *store.Store, tk domain.APIToken, secret string) domain.APIToken {
	t.Helper()
	tk.TokenID = RandomString(idLength)
	err := st.InTx(t.Context(), func(tx *store.Tx) (err error) {
		tk, err = tx.InsertAPIToken(t.Context(), tk, Hash(secret), "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tk
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
