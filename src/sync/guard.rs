//! The safety guard: decides, once a run has read everything and before anything is committed,
//! whether its result can be trusted enough to apply. A portal that briefly answers with an
//! empty, partial, repeating or unreadable list must never empty the catalogue. Pure: numbers
//! in, verdict out.

use serde::Serialize;

use crate::sync::paging::PagingError;

/// What a run saw, as far as the guard is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evidence<'a> {
    /// Procedures of the source stored as active before the run.
    pub active_before: u64,
    /// Procedures stored as missing (not yet removed) before the run.
    pub missing_before: u64,
    /// How many of those stored procedures (active or missing) the run met.
    pub stored_met: u64,
    /// Records the run met, repeats included.
    pub records_seen: u64,
    /// Distinct records among them: one per code, plus each record whose code could not be
    /// used (see `sync::seen`).
    pub distinct: u64,
    /// Records whose code came again on a later page than the first time.
    pub repeated_across_pages: u64,
    /// Records met that could not be used (unreadable, no usable code, refused values).
    pub unusable: u64,
    /// What the first unusable record was refused for.
    pub unusable_example: Option<&'a str>,
    /// The total the source declared (`TOTAL_RECORDS`, `TongSo`), when it declared one.
    pub declared_total: Option<u64>,
    /// Stored procedures the run would mark missing or remove.
    pub would_remove: u64,
}

/// What the operator allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// The largest share of active procedures one run may mark missing or remove.
    pub max_removal_share: f64,
    /// The largest share of the records met that may be unusable.
    pub max_unusable_share: f64,
    /// `sync --allow-mass-removal`: the operator has checked the source and accepts the result.
    pub allow_mass_removal: bool,
}

/// Why a run was held.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Hold {
    /// Nothing at all came back from a source that had procedures.
    Empty { had: u64 },
    /// The source itself said there were more records than arrived (distinct ones).
    Incomplete {
        declared: u64,
        got: u64,
        records: u64,
        had: u64,
    },
    /// Records came again on later pages and the source declares no total to check against:
    /// its paging is unreliable, so others may have been skipped.
    Repeats { repeated: u64, records: u64 },
    /// Too many of the records met could not be used (a broken mapping, a garbled export).
    Unusable {
        unusable: u64,
        records: u64,
        limit: f64,
        /// What the first one was refused for.
        example: Option<String>,
    },
    /// Records arrived, but none of the stored procedures among them: another catalogue, or
    /// garbage.
    Unrelated { had: u64, got: u64 },
    /// Too large a share of the catalogue would go missing at once.
    MassRemoval {
        had: u64,
        got: u64,
        would_remove: u64,
        limit: f64,
    },
    /// Paging could not be trusted (see [`PagingError`]); the override cannot help.
    Paging { fault: PagingError },
}

/// What the operator can do about a held run; each front end words it its own way (the
/// command line names the flag, the admin page shows a button).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Remedy {
    /// Paging could not be trusted: try again later; no override can apply such a result.
    RetryLater,
    /// The portal repeated records: try again later, or apply what arrived.
    RetryOrAllow,
    /// Records could not be used: check the problems and the mapping, or apply what arrived.
    CheckMappingOrAllow,
    /// Procedures would go: check the portal, or apply what arrived.
    CheckPortalOrAllow,
}

impl Hold {
    /// What the operator can do about it.
    pub fn remedy(&self) -> Remedy {
        match self {
            Hold::Paging { .. } => Remedy::RetryLater,
            Hold::Repeats { .. } => Remedy::RetryOrAllow,
            Hold::Unusable { .. } => Remedy::CheckMappingOrAllow,
            _ => Remedy::CheckPortalOrAllow,
        }
    }
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::Empty { had } => write!(
                f,
                "the source returned no procedures at all, but {had} are stored as active \
                 (or waiting out their removal grace); a portal answering with an empty list is \
                 far more often broken than emptied"
            ),
            Hold::Incomplete {
                declared,
                got,
                records,
                had,
            } if records > got => write!(
                f,
                "the source declared {declared} procedures and sent {records} records, but they \
                 hold only {got} distinct procedures ({} record(s) repeated a code: pages that \
                 overlap or repeat, or two records with one code) (had {had}): the result is \
                 incomplete",
                records - got
            ),
            Hold::Incomplete {
                declared, got, had, ..
            } => write!(
                f,
                "the source declared {declared} procedures but only {got} arrived (had {had}): \
                 the result is incomplete"
            ),
            Hold::Repeats { repeated, records } => write!(
                f,
                "{repeated} of the {records} records came again on a later page: the portal's \
                 paging is unreliable (its sort is unstable or it ignores the page number), so \
                 other records may have been skipped, and it declares no total to check against"
            ),
            Hold::Unusable {
                unusable,
                records,
                limit,
                example,
            } => write!(
                f,
                "{unusable} of the {records} records could not be used ({:.0} %, more than the \
                 {:.0} % allowed: max_unusable_share){}",
                share(*unusable, *records) * 100.0,
                limit * 100.0,
                match example {
                    Some(why) => format!(", the first because {why}"),
                    None => String::new(),
                }
            ),
            Hold::Unrelated { had, got } => write!(
                f,
                "none of the {had} procedures stored for this source (active, or waiting out \
                 their removal grace) is among the {got} that arrived: the portal is answering \
                 with another catalogue, or with something that is not its catalogue"
            ),
            Hold::MassRemoval {
                had,
                got,
                would_remove,
                limit,
            } => write!(
                f,
                "had {had} active procedures, got {got}, would remove {would_remove} ({:.0} %), \
                 more than the {:.0} % allowed in one run (max_removal_share)",
                share(*would_remove, *had) * 100.0,
                limit * 100.0
            ),
            Hold::Paging { fault } => fault.fmt(f),
        }
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Lets a run through, or says why it must be held.
pub fn check(evidence: &Evidence<'_>, policy: &Policy) -> Result<(), Hold> {
    if policy.allow_mass_removal {
        return Ok(());
    }
    let had = evidence.active_before;
    // Procedures waiting out their grace count too: an empty answer must not remove them.
    let kept = had + evidence.missing_before;
    let incomplete = evidence
        .declared_total
        .is_some_and(|declared| evidence.distinct < declared);
    if evidence.records_seen == 0 && kept > 0 && !incomplete {
        return Err(Hold::Empty { had: kept });
    }
    match evidence.declared_total {
        Some(declared) if evidence.distinct < declared => {
            return Err(Hold::Incomplete {
                declared,
                got: evidence.distinct,
                records: evidence.records_seen,
                had,
            });
        }
        None if evidence.repeated_across_pages > 0 => {
            return Err(Hold::Repeats {
                repeated: evidence.repeated_across_pages,
                records: evidence.records_seen,
            });
        }
        _ => {}
    }
    if evidence.records_seen > 0 && kept > 0 && evidence.stored_met == 0 {
        return Err(Hold::Unrelated {
            had: kept,
            got: evidence.distinct,
        });
    }
    if share(evidence.unusable, evidence.records_seen) > policy.max_unusable_share {
        return Err(Hold::Unusable {
            unusable: evidence.unusable,
            records: evidence.records_seen,
            limit: policy.max_unusable_share,
            example: evidence.unusable_example.map(str::to_string),
        });
    }
    if share(evidence.would_remove, had) > policy.max_removal_share {
        return Err(Hold::MassRemoval {
            had,
            got: evidence.distinct,
            would_remove: evidence.would_remove,
            limit: policy.max_removal_share,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: Policy = Policy {
        max_removal_share: 0.1,
        max_unusable_share: 0.5,
        allow_mass_removal: false,
    };

    fn evidence(had: u64, got: u64, declared: Option<u64>, would_remove: u64) -> Evidence<'static> {
        Evidence {
            stored_met: had.saturating_sub(would_remove).min(got),
            active_before: had,
            records_seen: got,
            distinct: got,
            declared_total: declared,
            would_remove,
            ..Evidence::default()
        }
    }

    #[test]
    fn an_empty_answer_for_a_stored_source_is_held() {
        assert_eq!(
            check(&evidence(500, 0, Some(0), 500), &POLICY),
            Err(Hold::Empty { had: 500 })
        );
        // A source seen for the first time may well be empty.
        assert_eq!(check(&evidence(0, 0, Some(0), 0), &POLICY), Ok(()));
    }

    #[test]
    fn an_empty_answer_removes_no_procedure_waiting_out_its_grace() {
        let waiting = Evidence {
            missing_before: 300,
            ..evidence(0, 0, None, 0)
        };
        assert_eq!(check(&waiting, &POLICY), Err(Hold::Empty { had: 300 }));
        // An empty answer that declares records says more: it is incomplete.
        assert_eq!(
            check(&evidence(500, 0, Some(1000), 500), &POLICY),
            Err(Hold::Incomplete {
                declared: 1000,
                got: 0,
                records: 0,
                had: 500
            })
        );
    }

    #[test]
    fn an_answer_without_any_stored_procedure_is_held() {
        // An operator let an empty answer through: 1,000 wait out their grace. The next answer
        // holds one unrelated record.
        let unrelated = Evidence {
            missing_before: 1000,
            stored_met: 0,
            ..evidence(0, 1, None, 0)
        };
        assert_eq!(
            check(&unrelated, &POLICY),
            Err(Hold::Unrelated { had: 1000, got: 1 })
        );
        let related = Evidence {
            stored_met: 1,
            ..unrelated
        };
        assert_eq!(check(&related, &POLICY), Ok(()));
    }

    #[test]
    fn fewer_records_than_declared_is_incomplete() {
        assert_eq!(
            check(&evidence(500, 300, Some(500), 200), &POLICY),
            Err(Hold::Incomplete {
                declared: 500,
                got: 300,
                records: 300,
                had: 500
            })
        );
    }

    #[test]
    fn completeness_counts_distinct_records_not_repeats() {
        // 1,500 records arrive for 1,500 declared, but 100 of them came twice.
        let repeated = Evidence {
            records_seen: 1500,
            distinct: 1400,
            repeated_across_pages: 100,
            ..evidence(1500, 1500, Some(1500), 100)
        };
        let held = check(&repeated, &POLICY).unwrap_err();
        assert_eq!(
            held,
            Hold::Incomplete {
                declared: 1500,
                got: 1400,
                records: 1500,
                had: 1500
            }
        );
        assert!(
            held.to_string().contains("100 record(s) repeated a code"),
            "{held}"
        );
        // Without a declared total, records coming again on later pages are enough to hold.
        let no_total = Evidence {
            declared_total: None,
            ..repeated
        };
        assert_eq!(
            check(&no_total, &POLICY),
            Err(Hold::Repeats {
                repeated: 100,
                records: 1500
            })
        );
    }

    #[test]
    fn a_result_mostly_unusable_is_held() {
        let broken = Evidence {
            unusable: 30,
            unusable_example: Some("required value `name` is missing"),
            ..evidence(0, 30, Some(30), 0)
        };
        let held = check(&broken, &POLICY).unwrap_err();
        assert!(matches!(
            held,
            Hold::Unusable {
                unusable: 30,
                records: 30,
                ..
            }
        ));
        assert!(
            held.to_string()
                .contains("the first because required value `name` is missing"),
            "{held}"
        );
        let some = Evidence {
            unusable: 3,
            ..evidence(0, 30, Some(30), 0)
        };
        assert_eq!(check(&some, &POLICY), Ok(()));
    }

    #[test]
    fn removing_more_than_the_share_is_held_with_the_numbers() {
        let held = check(&evidence(500, 300, Some(300), 200), &POLICY).unwrap_err();
        assert_eq!(
            held,
            Hold::MassRemoval {
                had: 500,
                got: 300,
                would_remove: 200,
                limit: 0.1
            }
        );
        let message = held.to_string();
        assert!(message.contains("had 500") && message.contains("got 300"));
        assert!(message.contains("would remove 200 (40 %)"), "{message}");
        // Exactly at the limit is allowed.
        assert_eq!(check(&evidence(500, 450, Some(450), 50), &POLICY), Ok(()));
        assert!(check(&evidence(500, 449, Some(449), 51), &POLICY).is_err());
    }

    #[test]
    fn the_operator_can_let_a_run_through() {
        let allow = Policy {
            allow_mass_removal: true,
            ..POLICY
        };
        assert_eq!(check(&evidence(500, 0, Some(0), 500), &allow), Ok(()));
        assert_eq!(check(&evidence(500, 300, Some(300), 200), &allow), Ok(()));
    }

    proptest! {
        #[test]
        fn a_complete_result_removing_little_always_passes(had in 1u64..100_000, permille in 0u64..=100) {
            let would_remove = had * permille / 1000;
            let got = had - would_remove;
            prop_assert_eq!(check(&evidence(had, got, Some(got), would_remove), &POLICY), Ok(()));
        }

        #[test]
        fn a_run_removing_more_than_allowed_never_passes(
            had in 1u64..100_000,
            removed_share in 0.1001f64..=1.0,
            declared in proptest::option::of(0u64..200_000),
        ) {
            let would_remove = ((had as f64 * removed_share).ceil() as u64).min(had);
            prop_assume!(would_remove as f64 / had as f64 > 0.1);
            let got = had - would_remove;
            prop_assert!(check(&evidence(had, got, declared, would_remove), &POLICY).is_err());
        }

        #[test]
        fn fewer_than_declared_never_passes(declared in 1u64..100_000, missing in 1u64..1000, had in 0u64..100_000) {
            let got = declared.saturating_sub(missing);
            prop_assume!(got < declared);
            prop_assert!(check(&evidence(had, got, Some(declared), 0), &POLICY).is_err());
        }

        #[test]
        fn fewer_distinct_than_declared_never_passes_whatever_arrived(
            declared in 1u64..100_000,
            missing in 1u64..1000,
            repeats in 0u64..100_000,
        ) {
            let distinct = declared.saturating_sub(missing);
            prop_assume!(distinct < declared);
            let e = Evidence {
                records_seen: distinct + repeats,
                distinct,
                repeated_across_pages: repeats,
                ..evidence(declared, distinct, Some(declared), 0)
            };
            prop_assert!(check(&e, &POLICY).is_err());
        }
    }
}
