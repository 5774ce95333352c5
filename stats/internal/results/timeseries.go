package results

import "time"

// Point is one treatment's effect on one metric at one refresh.
type Point struct {
	ComputedAt  time.Time `json:"computed_at"`
	Variation   string    `json:"variation"`
	N           int64     `json:"n"`
	Effect      *float64  `json:"effect"`
	CILower     *float64  `json:"ci_lower"`
	CIUpper     *float64  `json:"ci_upper"`
	PValue      *float64  `json:"p_value"`
	ChanceToWin *float64  `json:"chance_to_win"`
}

// Timeseries is a metric's effect and interval over the snapshot history, oldest first
// (snapshots arrive newest first).
func Timeseries(snaps []Snapshot, metric string) []Point {
	out := []Point{}
	for i := len(snaps) - 1; i >= 0; i-- {
		for _, m := range snaps[i].Metrics {
			if m.Metric != metric {
				continue
			}
			for _, v := range m.Variants {
				if v.Control {
					continue
				}
				p := Point{ComputedAt: snaps[i].ComputedAt, Variation: v.Key, N: v.N, Effect: v.Effect, PValue: v.PValue, ChanceToWin: v.ChanceToWin}
				if v.CI != nil {
					p.CILower, p.CIUpper = finitePtr(v.CI.Low), finitePtr(v.CI.High)
				}
				out = append(out, p)
			}
		}
	}
	return out
}

func finitePtr(f float64) *float64 {
	if f != f || f > 1e308 || f < -1e308 {
		return nil
	}
	return &f
}
