//! A lease's [`State`] in words, and the JSON of `status` and `list`, from its [`Facts`].

use gridlease_primitives::protocol::{CloseReason, JobViewExt, LeaseKind, Status};
use serde_json::json;

use super::{Facts, State, reason_name, short_string};
use crate::ctx::{money, utc, when};

impl Facts {
    /// The lease's state in words.
    pub(crate) fn state(&self) -> State {
        let id = self.id;
        let v = &self.v;
        let now = self.now;
        let prove = format!("gridlease result {id} --prove");
        let s = |word, text: String| State {
            word,
            text,
            next: None,
        };
        match v.status() {
            Status::Open => {
                let end: u64 = v.biddingEnd.to();
                if now <= end {
                    s("open", format!("open: bids until {}", when(end, now)))
                } else {
                    State {
                        word: "awaiting-award",
                        text: if v.provider.is_zero() {
                            "bid window over and no bid on chain: unless a provider's signed bid \
                             comes with the award, nobody took it at this price; cancel it and \
                             submit again with a higher price.max_per_hour or another GPU class"
                                .into()
                        } else {
                            "bid window over: awaiting the award (you may cancel it)".into()
                        },
                        next: Some(format!("gridlease cancel {id}")),
                    }
                }
            }
            Status::Leased => self.running_state(&prove),
            Status::Closed => self.closed_state(&prove),
            Status::Cancelled => s(
                "cancelled",
                format!(
                    "cancelled: refunded {}{}",
                    self.money(self.cancelled.as_ref().map_or(0, |c| c.refund.to())),
                    self.credited_note()
                ),
            ),
            Status::Faulted => self.fault_state(),
            Status::None => s("unknown", "no such order on this market".into()),
        }
    }

    fn running_state(&self, prove: &str) -> State {
        let (v, now, id) = (&self.v, self.now, self.id);
        let end: u64 = v.end.to();
        let next_prove = |word, text| State {
            word,
            text,
            next: Some(prove.to_owned()),
        };
        match v.lease_kind() {
            LeaseKind::Held => {
                if !self.challenges.is_empty() || v.challenged {
                    let list = self
                        .challenges
                        .iter()
                        .map(|c| format!("chunk {} by {}", c.index, utc(c.deadline)))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let due = self.challenges.iter().any(|c| now > c.deadline);
                    let text = format!(
                        "result posted and CHALLENGED: {} open chunk challenge(s) ({list}); the result is held until each is revealed on chain{}",
                        self.challenges.len(),
                        if due {
                            "; one was NOT revealed in time: prove it unavailable (refunds everything, slashes the provider)"
                        } else {
                            "; unrevealed past its window, it can be proven unavailable"
                        }
                    );
                    return State {
                        word: "challenged",
                        text,
                        next: due.then(|| prove.to_owned()),
                    };
                }
                if now <= end {
                    State {
                        word: "held",
                        text: format!(
                            "result posted, held until {}: accepting it now pays {} (the rest of the escrow, {}, comes back)",
                            when(end, now),
                            self.money(self.accrued),
                            self.money(v.escrow.to::<u128>().saturating_sub(self.accrued)),
                        ),
                        next: Some(format!(
                            "gridlease result {id}   (check it), then gridlease close {id}   (accept)"
                        )),
                    }
                } else {
                    State {
                        word: "result-stands",
                        text: format!(
                            "result stands (challenge window over {}): closing completes it and pays {}; anyone may close it",
                            utc(end),
                            self.money(self.accrued)
                        ),
                        next: Some(format!("gridlease close {id}")),
                    }
                }
            }
            kind => {
                let what = if kind == LeaseKind::Service {
                    "service"
                } else {
                    "batch job"
                };
                if let Some(until) = self.ack_until() {
                    if now > until {
                        return next_prove(
                            "no-show",
                            format!(
                                "NO-SHOW: the provider did not acknowledge the {what} by {}; proving it refunds everything and slashes the provider",
                                utc(until)
                            ),
                        );
                    }
                    return State {
                        word: "awaiting-acknowledgement",
                        text: format!(
                            "awaiting acknowledgement: the provider must acknowledge the {what} by {}; closing now pays nothing",
                            when(until, now)
                        ),
                        next: None,
                    };
                }
                if kind == LeaseKind::Service {
                    if self.lapsed {
                        return State {
                            word: "lapsed",
                            text: format!(
                                "lapsed: the provider's heartbeat stopped; anyone may close it: it pays {} up to the lapse and refunds the rest",
                                self.money(self.accrued)
                            ),
                            next: Some(format!("gridlease close {id}")),
                        };
                    }
                    return State {
                        word: "live",
                        text: format!(
                            "acknowledged, live: paid per second of provider heartbeat ({} accrued, not yet settled); ends {}{}",
                            self.money(self.accrued),
                            when(end, now),
                            if v.stalePending {
                                "; a heartbeat lapse was reported"
                            } else {
                                ""
                            }
                        ),
                        next: None,
                    };
                }
                let deadline = end + self.windows.as_ref().map_or(0, |w| w.deadline_grace);
                if now <= end {
                    State {
                        word: "running",
                        text: format!(
                            "acknowledged, running: result due by {} (grace until {}); closing now pays the time used, {}",
                            when(end, now),
                            utc(deadline),
                            self.money(self.accrued)
                        ),
                        next: None,
                    }
                } else if now <= deadline {
                    State {
                        word: "deadline-grace",
                        text: format!(
                            "past its end without a result: the provider may still post it until {}; closing now pays nothing",
                            when(deadline, now)
                        ),
                        next: None,
                    }
                } else {
                    next_prove(
                        "deadline-missed",
                        format!(
                            "DEADLINE MISSED: no result by {}; proving it refunds everything and slashes the provider",
                            utc(deadline)
                        ),
                    )
                }
            }
        }
    }

    fn closed_state(&self, prove: &str) -> State {
        let (v, now) = (&self.v, self.now);
        let c = self.closed.as_ref();
        let reason = c.and_then(|c| CloseReason::of(c.reason));
        let amounts = c.map_or_else(String::new, |c| {
            format!(
                ": paid {}, refunded {}{}",
                self.money(c.paid.to()),
                self.money(c.refund.to()),
                self.credited_note()
            )
        });
        let word = match reason {
            Some(CloseReason::Completed) => "completed",
            Some(CloseReason::Accepted) => "accepted",
            Some(CloseReason::Lapsed) => "lapsed",
            Some(CloseReason::Expired) => "expired",
            Some(CloseReason::Exhausted) => "exhausted",
            _ => "closed",
        };
        let mut text = format!("{}{amounts}", reason_name(c.map_or(u8::MAX, |c| c.reason)));
        let mut next = None;
        let held_until = v.settledAt.to::<u64>() + self.horizon;
        if v.held && now <= held_until {
            if v.lease_kind() == LeaseKind::Held {
                let end: u64 = v.end.to();
                if now <= end {
                    text += &format!(
                        "; faults on the result stay provable until {} (gridlease result {} --prove)",
                        when(end, now),
                        self.id
                    );
                }
                for c in &self.challenges {
                    if now > c.deadline {
                        text += &format!(
                            "; chunk {} was NOT revealed by {}: proving it unavailable slashes the provider and compensates what you paid",
                            c.index,
                            utc(c.deadline)
                        );
                        next = Some(prove.to_owned());
                    } else {
                        text += &format!(
                            "; chunk {} is challenged, to be revealed by {}",
                            c.index,
                            when(c.deadline, now)
                        );
                    }
                }
            } else if let Some(fault) = self.provable_liveness_fault() {
                text += &format!("; the {fault} stays provable: proving it slashes the provider");
                next = Some(prove.to_owned());
            }
            text += &format!(
                "; the provider's collateral is held until {}",
                when(held_until, now)
            );
        } else if reason == Some(CloseReason::Completed) {
            text = format!("completed: the result stood{amounts}");
        }
        State { word, text, next }
    }

    fn fault_state(&self) -> State {
        let Some(f) = &self.faulted else {
            return State {
                word: "faulted",
                text: "faulted".into(),
                next: None,
            };
        };
        let before = match self.closed.as_ref().map(|c| c.reason) {
            Some(r) if CloseReason::of(r) != Some(CloseReason::Faulted) => {
                format!("{}, then ", reason_name(r))
            }
            _ => String::new(),
        };
        let compensation: u128 = f.compensation.try_into().unwrap_or(u128::MAX);
        let fee: u128 = f.fee.to();
        let text = format!(
            "{before}FAULTED ({}): the escrow refunded {}{}{}, compensation {}{}, the provider's stake slashed {}{}",
            short_string(f.kind),
            self.money(f.refund.to::<u128>() - fee),
            if fee > 0 {
                format!(" (less the reporter's fee of {})", self.money(fee))
            } else {
                String::new()
            },
            self.credited_note(),
            money(compensation, &self.stake),
            if compensation > 0 {
                " credited in staking (gridlease withdraw)"
            } else {
                ""
            },
            money(f.slashed.try_into().unwrap_or(u128::MAX), &self.stake),
            if f.reporter.is_zero() || f.reporter == self.tenant() {
                String::new()
            } else {
                format!(" (proven by {})", f.reporter)
            },
        );
        State {
            word: "faulted",
            text,
            next: (compensation > 0).then(|| "gridlease withdraw".to_owned()),
        }
    }

    /// What the refund's words add when the token refused it and the market credited it.
    fn credited_note(&self) -> String {
        if self.credited == 0 {
            return String::new();
        }
        // The market pays a refund in one transfer: all of it, or all of it as a credit.
        " (the token refused the transfer: credited to the tenant in the market instead; `gridlease withdraw` collects it)".into()
    }

    /// The JSON of `status` and `list`.
    pub(crate) fn json(&self) -> serde_json::Value {
        let v = &self.v;
        let st = self.state();
        let held_until = (v.held && v.status() == Status::Closed)
            .then(|| v.settledAt.to::<u64>() + self.horizon);
        json!({
            "id": self.id,
            "status": v.status().word(),
            "state": st.word,
            "stateText": st.text,
            "next": st.next,
            "kind": match v.lease_kind() { LeaseKind::Service => "service", _ => "batch" },
            "tenant": self.tenant(),
            "token": self.token.symbol,
            "provider": self.provider(),
            "escrow": v.escrow.to::<u128>().to_string(),
            "escrowText": self.money(v.escrow.to()),
            "ratePerSecond": v.ratePerSecond.to::<u128>().to_string(),
            "maxPricePerSecond": v.maxPricePerSecond.to::<u128>().to_string(),
            "collateral": v.collateral.to::<u128>().to_string(),
            "biddingEnd": v.biddingEnd.to::<u64>(),
            "settledAt": v.settledAt.to::<u64>(),
            "end": v.end.to::<u64>(),
            "start": self.started.as_ref().map(|s| s.start.to::<u64>()),
            "accrued": self.accrued.to_string(),
            "lowBalance": v.lowBalance,
            "instant": v.instant,
            "acknowledged": v.acknowledged,
            "acknowledgeBy": self.ack_until().filter(|_| v.status() == Status::Leased),
            "resultDeadline": self.deadline().filter(|_| v.status() == Status::Leased),
            "challenged": v.challenged,
            "openChallenges": self.challenges.iter().map(|c| json!({
                "index": c.index, "deadline": c.deadline,
            })).collect::<Vec<_>>(),
            "holdEnd": (v.lease_kind() == LeaseKind::Held && v.status() == Status::Leased).then(|| v.end.to::<u64>()),
            "held": v.held,
            "collateralHeldUntil": held_until,
            "tls": self.tls_key.map(|k| json!({
                "key": k, "pin": gridlease_fetch::service::curl_pin(k),
            })),
            "result": self.result.as_ref().map(|r| json!({
                "root": r.root, "size": r.size, "uri": r.uri,
            })),
            "closed": self.closed.as_ref().map(|c| json!({
                "reason": reason_name(c.reason),
                "paid": c.paid.to::<u128>().to_string(),
                "toProvider": c.toProvider.to::<u128>().to_string(),
                "protocolFee": c.protocolFee.to::<u128>().to_string(),
                "keeperFee": c.keeperFee.to::<u128>().to_string(),
                "refund": c.refund.to::<u128>().to_string(),
                "closedAt": c.closedAt.to::<u64>(),
                "held": c.held,
            })),
            "fault": self.faulted.as_ref().map(|f| json!({
                "kind": short_string(f.kind),
                // Net of the reporter's fee, which is shown on its own.
                "refund": (f.refund.to::<u128>() - f.fee.to::<u128>()).to_string(),
                "fee": f.fee.to::<u128>().to_string(),
                "compensation": f.compensation.to_string(),
                "slashed": f.slashed.to_string(),
                "reporter": f.reporter,
            })),
            "cancelled": self.cancelled.as_ref().map(|c| json!({
                "refund": c.refund.to::<u128>().to_string(),
            })),
            // Of the refund: what the token refused to send, credited in the market instead.
            "credited": self.credited.to_string(),
        })
    }
}
