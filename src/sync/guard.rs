//! The safety guard: decides, once a run has read everything and before anything is committed,
//! whether its result can be trusted enough to apply. A portal that briefly answers with an
//! empty or partial list must never empty the catalogue. Pure: numbers in, verdict out.

use serde::Serialize;

/// What a run saw, as far as the guard is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    /// Procedures of the source stored as active before the run.
    pub active_before: u64,
    /// Records the run met (read, recognised unchanged, or unreadable).
    pub records_seen: u64,
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
    /// `sync --allow-mass-removal`: the operator has checked the source and accepts the result.
    pub allow_mass_removal: bool,
}

/// Why a run was held.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Hold {
    /// Nothing at all came back from a source that had procedures.
    Empty { had: u64 },
    /// The source itself said there were more records than arrived.
    Incomplete { declared: u64, got: u64, had: u64 },
    /// Too large a share of the catalogue would go missing at once.
    MassRemoval {
        had: u64,
        got: u64,
        would_remove: u64,
        limit: f64,
    },
    /// Paging went round in circles: a page came back identical to the one before it.
    Looped { page: u64 },
}

impl Hold {
    /// What the operator can do about it.
    pub fn advice(&self, source: &str) -> String {
        match self {
            Hold::Looped { .. } => {
                "The portal is repeating itself; try again later, and tell its operator if it persists"
                    .to_string()
            }
            _ => format!(
                "Check the portal; if it really did drop these procedures, run `tthc-sync sync --source {source} --allow-mass-removal`"
            ),
        }
    }
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::Empty { had } => write!(
                f,
                "the source returned no procedures at all, but {had} are stored as active; \
                 a portal answering with an empty list is far more often broken than emptied"
            ),
            Hold::Incomplete { declared, got, had } => write!(
                f,
                "the source declared {declared} procedures but only {got} arrived (had {had}): \
                 the result is incomplete"
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
            Hold::Looped { page } => write!(
                f,
                "page {page} came back identical to the page before it, so paging stopped \
                 before the end and the result is incomplete"
            ),
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
pub fn check(evidence: &Evidence, policy: &Policy) -> Result<(), Hold> {
    if policy.allow_mass_removal {
        return Ok(());
    }
    let had = evidence.active_before;
    if evidence.records_seen == 0 && had > 0 {
        return Err(Hold::Empty { had });
    }
    if let Some(declared) = evidence.declared_total
        && evidence.records_seen < declared
    {
        return Err(Hold::Incomplete {
            declared,
            got: evidence.records_seen,
            had,
        });
    }
    if share(evidence.would_remove, had) > policy.max_removal_share {
        return Err(Hold::MassRemoval {
            had,
            got: evidence.records_seen,
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
        allow_mass_removal: false,
    };

    fn evidence(had: u64, got: u64, declared: Option<u64>, would_remove: u64) -> Evidence {
        Evidence {
            active_before: had,
            records_seen: got,
            declared_total: declared,
            would_remove,
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
    fn fewer_records_than_declared_is_incomplete() {
        assert_eq!(
            check(&evidence(500, 300, Some(500), 200), &POLICY),
            Err(Hold::Incomplete {
                declared: 500,
                got: 300,
                had: 500
            })
        );
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
    }
}
