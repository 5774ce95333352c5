package evaluation

import "github.com/switchyard-io/switchyard/sdks/go/ruleset"

// typedDocument is a ruleset or patch document decoded into the ruleset package's types.
type typedDocument = wireDocument[ruleset.Environment, ruleset.Flag, ruleset.Segment]

// decodeTyped decodes a well-formed document into its typed form: what json.Unmarshal makes of
// it, several times faster (an SDK decodes a document on every change it streams, and on this
// path encoding/json's reflection was half of applying a one-flag patch). It is written for the
// documents the flag service publishes and reports false for anything it does not handle exactly
// like encoding/json — invalid JSON, a wrong type, a duplicate or case-folded key, an escaped
// surrogate, invalid UTF-8 — so that the caller decodes those with encoding/json instead. When it
// reports true, the result is what json.Unmarshal gives (wire_test.go compares the two on the
// conformance rulesets and fuzzed documents).
func decodeTyped(data []byte, d *typedDocument) bool {
	r := wireReader{data: data}
	r.document(d)
	return r.whole()
}

// The JSON names of each type's fields, in the order of the member switches below.
var (
	documentFields    = []string{"schema_version", "environment", "version", "base_version", "generated_at", "flags", "segments", "deleted_flags", "deleted_segments"}
	environmentFields = []string{"id", "key", "name", "project_id", "project_key"}
	flagFields        = []string{"key", "kind", "version", "variations", "on", "off_variation", "prerequisites", "targets", "rules", "fallthrough", "salt", "client_side"}
	variationFields   = []string{"key", "value", "name", "description"}
	prereqFields      = []string{"flag", "variation"}
	targetFields      = []string{"context_kind", "variation", "values"}
	ruleFields        = []string{"id", "description", "clauses", "serve"}
	clauseFields      = []string{"context_kind", "attribute", "op", "values", "negate"}
	serveFields       = []string{"variation", "rollout"}
	rolloutFields     = []string{"context_kind", "bucket_by", "salt", "variations", "experiment_key"}
	weightedFields    = []string{"variation", "weight"}
	segmentFields     = []string{"key", "version", "included", "excluded", "rules"}
	segTargetFields   = []string{"context_kind", "values"}
	segRuleFields     = []string{"id", "clauses"}
)

func (r *wireReader) document(d *typedDocument) {
	r.object(documentFields, func(field int) {
		switch field {
		case 0:
			d.SchemaVersion = nil
			if !r.null() {
				var v int64
				r.int(&v)
				if v != int64(int(v)) {
					r.fail()
				}
				n := int(v)
				d.SchemaVersion = &n
			}
		case 1:
			r.environment(&d.Environment)
		case 2:
			r.int(&d.Version)
		case 3:
			d.BaseVersion = nil
			if !r.null() {
				d.BaseVersion = new(int64)
				r.int(d.BaseVersion)
			}
		case 4:
			d.GeneratedAt = r.raw()
		case 5:
			d.Flags = pointerToList(r, r.flag)
		case 6:
			d.Segments = pointerToList(r, r.segment)
		case 7:
			list(r, &d.DeletedFlags, r.str)
		case 8:
			list(r, &d.DeletedSegments, r.str)
		}
	})
}

// pointerToList reads an array into a new slice (null: a nil pointer).
func pointerToList[T any](r *wireReader, elem func(*T)) *[]T {
	var out []T
	list(r, &out, elem)
	if out == nil {
		return nil
	}
	return &out
}

func (r *wireReader) environment(e *ruleset.Environment) {
	r.object(environmentFields, func(field int) {
		r.str([]*string{&e.ID, &e.Key, &e.Name, &e.ProjectID, &e.ProjectKey}[field])
	})
}

func (r *wireReader) flag(f *ruleset.Flag) {
	r.object(flagFields, func(field int) {
		switch field {
		case 0:
			r.str(&f.Key)
		case 1:
			r.str((*string)(&f.Kind))
		case 2:
			r.int(&f.Version)
		case 3:
			list(r, &f.Variations, r.variation)
		case 4:
			r.bool(&f.On)
		case 5:
			r.str(&f.OffVariation)
		case 6:
			list(r, &f.Prerequisites, func(p *ruleset.Prerequisite) {
				r.object(prereqFields, func(field int) { r.str([]*string{&p.Flag, &p.Variation}[field]) })
			})
		case 7:
			list(r, &f.Targets, func(t *ruleset.Target) {
				r.object(targetFields, func(field int) {
					switch field {
					case 0:
						r.str(&t.ContextKind)
					case 1:
						r.str(&t.Variation)
					case 2:
						list(r, &t.Values, r.str)
					}
				})
			})
		case 8:
			list(r, &f.Rules, r.rule)
		case 9:
			r.serve(&f.Fallthrough)
		case 10:
			r.str(&f.Salt)
		case 11:
			r.bool(&f.ClientSide)
		}
	})
}

func (r *wireReader) variation(v *ruleset.Variation) {
	r.object(variationFields, func(field int) {
		switch field {
		case 0:
			r.str(&v.Key)
		case 1:
			v.Value = r.raw()
		case 2:
			r.str(&v.Name)
		case 3:
			r.str(&v.Description)
		}
	})
}

func (r *wireReader) rule(rule *ruleset.Rule) {
	r.object(ruleFields, func(field int) {
		switch field {
		case 0:
			r.str(&rule.ID)
		case 1:
			r.str(&rule.Description)
		case 2:
			list(r, &rule.Clauses, r.clause)
		case 3:
			r.serve(&rule.Serve)
		}
	})
}

func (r *wireReader) clause(c *ruleset.Clause) {
	r.object(clauseFields, func(field int) {
		switch field {
		case 0:
			r.str(&c.ContextKind)
		case 1:
			r.str(&c.Attribute)
		case 2:
			r.str((*string)(&c.Op))
		case 3:
			list(r, &c.Values, func(v *any) { *v = r.value() })
		case 4:
			r.bool(&c.Negate)
		}
	})
}

func (r *wireReader) serve(s *ruleset.Serve) {
	r.object(serveFields, func(field int) {
		if field == 0 {
			r.str(&s.Variation)
			return
		}
		s.Rollout = nil
		if r.null() {
			return
		}
		ro := new(ruleset.Rollout)
		s.Rollout = ro
		r.object(rolloutFields, func(field int) {
			switch field {
			case 0:
				r.str(&ro.ContextKind)
			case 1:
				r.str(&ro.BucketBy)
			case 2:
				r.str(&ro.Salt)
			case 3:
				list(r, &ro.Variations, func(w *ruleset.WeightedVariation) {
					r.object(weightedFields, func(field int) {
						if field == 0 {
							r.str(&w.Variation)
							return
						}
						var v int64
						r.int(&v)
						if v != int64(int(v)) {
							r.fail()
						}
						w.Weight = int(v)
					})
				})
			case 4:
				r.str(&ro.ExperimentKey)
			}
		})
	})
}

func (r *wireReader) segment(s *ruleset.Segment) {
	segTargets := func(dst *[]ruleset.SegmentTarget) {
		list(r, dst, func(t *ruleset.SegmentTarget) {
			r.object(segTargetFields, func(field int) {
				if field == 0 {
					r.str(&t.ContextKind)
				} else {
					list(r, &t.Values, r.str)
				}
			})
		})
	}
	r.object(segmentFields, func(field int) {
		switch field {
		case 0:
			r.str(&s.Key)
		case 1:
			r.int(&s.Version)
		case 2:
			segTargets(&s.Included)
		case 3:
			segTargets(&s.Excluded)
		case 4:
			list(r, &s.Rules, func(sr *ruleset.SegmentRule) {
				r.object(segRuleFields, func(field int) {
					if field == 0 {
						r.str(&sr.ID)
					} else {
						list(r, &sr.Clauses, r.clause)
					}
				})
			})
		}
	})
}
