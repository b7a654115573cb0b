//! Check 2: the checkpoint's log signature and clock cosignature against the pinned policy.

use super::*;

pub(super) fn check_signatures(ctx: &mut Ctx<'_>) -> Step {
    let policy = match &ctx.opts.trust {
        Trust::Pinned(p) => p.clone(),
        Trust::Bundled => {
            let text = utf8(layout::BUNDLED_POLICY, ctx.file(layout::BUNDLED_POLICY)?)?;
            TrustPolicy::parse(text)
                .map_err(|e| fail(layout::BUNDLED_POLICY, format!("not a trust policy: {e}")))?
        }
    };
    let note_text = utf8(layout::CHECKPOINT, ctx.file(layout::CHECKPOINT)?)?.to_owned();
    let (text, sigs) = note::split_note(&note_text)
        .map_err(|e| fail(layout::CHECKPOINT, format!("not a signed note: {e}")))?;
    let body = Checkpoint::parse_body(text)
        .map_err(|e| fail(layout::CHECKPOINT, format!("not a checkpoint: {e}")))?;
    ctx.report.origin = Some(body.origin.clone());
    ctx.report.tree_size = Some(body.size);
    let log = policy.log(&body.origin).cloned().ok_or_else(|| {
        fail(
            layout::CHECKPOINT,
            format!(
                "origin {:?} is not a log of the trust policy (the policy pins {})",
                body.origin,
                policy
                    .logs
                    .iter()
                    .map(|l| l.verifier.name().to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let witnesses: Vec<_> = policy
        .witnesses
        .iter()
        .map(|w| w.verifier.clone())
        .collect();
    let opened = note::open_note_cosigned(&note_text, std::slice::from_ref(&log), &witnesses)
        .map_err(|e| match e {
            NoteError::NoKnownSignature => fail(
                layout::CHECKPOINT,
                format!(
                    "not signed by the pinned log key {}+{:08x}: signed by another key",
                    log.name(),
                    log.key_id()
                ),
            ),
            NoteError::BadSignature { name } => fail(
                layout::CHECKPOINT,
                format!("signature by {name} does not verify"),
            ),
            e => fail(layout::CHECKPOINT, e.to_string()),
        })?;
    // The checkpoint must also satisfy the stricter checkpoint rules (origin = key name).
    verify_checkpoint(&note_text, &log, None)
        .map_err(|e| fail(layout::CHECKPOINT, e.to_string()))?;
    // Witness names of the policy whose cosignatures verified.
    let mut cosigned: Vec<(&str, u64)> = Vec::new();
    for c in &opened.cosignatures {
        for w in policy
            .witnesses
            .iter()
            .filter(|w| w.verifier.name() == c.name)
        {
            cosigned.push((w.name.as_str(), c.time));
        }
    }
    let names: Vec<&str> = cosigned.iter().map(|(n, _)| *n).collect();
    if !policy.quorum_satisfied(&names) {
        return Err(fail(
            layout::CHECKPOINT,
            format!(
                "cosignature quorum of the trust policy not met (valid cosignatures: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    let clock = cosigned
        .iter()
        .find(|(n, _)| *n == "clock")
        .or_else(|| cosigned.first())
        .copied();

    // Detached copies for openssl must be exactly the signed bytes.
    if ctx.file(layout::CHECKPOINT_BODY)? != text.as_bytes() {
        return Err(fail(
            layout::CHECKPOINT_BODY,
            "differs from the signed text of checkpoint",
        ));
    }
    let log_sig = sigs
        .iter()
        .find(|s| s.name == log.name() && s.key_id == log.key_id())
        .map(|s| s.signature.as_slice())
        .unwrap_or_default();
    if ctx.file(layout::CHECKPOINT_SIG)? != log_sig {
        return Err(fail(
            layout::CHECKPOINT_SIG,
            "is not the log key's signature from checkpoint",
        ));
    }
    let mut cosig_detail = "no cosignature".to_owned();
    if let Some((wname, time)) = clock {
        let msg = ctx.file(layout::COSIG_MSG)?;
        let msg_text = utf8(layout::COSIG_MSG, msg)?;
        let msg_time = cosigned
            .iter()
            .map(|(_, t)| *t)
            .find(|t| note::cosignature_message(text, *t) == msg_text)
            .ok_or_else(|| {
                fail(
                    layout::COSIG_MSG,
                    "is not the cosignature/v1 message of a verified cosignature",
                )
            })?;
        let cosig = ctx.file(layout::COSIG_SIG)?;
        let matches = sigs.iter().any(|s| {
            policy.witnesses.iter().any(|w| {
                w.verifier.name() == s.name
                    && w.verifier.key_id() == s.key_id
                    && s.signature.get(..8) == Some(&msg_time.to_be_bytes()[..])
                    && s.signature.get(8..) == Some(cosig)
            })
        });
        if !matches {
            return Err(fail(
                layout::COSIG_SIG,
                "is not the cosignature from checkpoint for checkpoint.cosig.msg",
            ));
        }
        let at = i64::try_from(time)
            .ok()
            .and_then(Timestamp::from_unix_secs)
            .map(|t| t.to_string())
            .unwrap_or_else(|| time.to_string());
        ctx.report.cosigned_at = Some(at.clone());
        cosig_detail = format!("cosigned by {wname} at {at}");
    }

    // The manifest must describe this checkpoint.
    let manifest = ctx.manifest()?;
    let mismatch = |what: &str| {
        fail(
            layout::MANIFEST,
            format!("{what} differs from the signed checkpoint"),
        )
    };
    if manifest.origin != body.origin {
        return Err(mismatch("origin"));
    }
    if manifest.tree_size != body.size {
        return Err(mismatch("tree_size"));
    }
    if manifest.root != B64.encode(body.root) {
        return Err(mismatch("root"));
    }
    if let Some((_, time)) = clock {
        let shown = i64::try_from(time)
            .ok()
            .and_then(Timestamp::from_unix_secs)
            .map(|t| t.to_string());
        if manifest.checkpoint_unix != time || Some(&manifest.checkpoint_time) != shown.as_ref() {
            return Err(mismatch("checkpoint_time"));
        }
    }
    let bundled_note = match (&ctx.opts.trust, ctx.bundle.get(layout::BUNDLED_POLICY)) {
        (Trust::Pinned(p), Some(b)) => match std::str::from_utf8(b).map(TrustPolicy::parse) {
            Ok(Ok(bp)) if bp == *p => "; trust/policy.txt matches the pinned policy",
            _ => "; trust/policy.txt differs from the pinned policy (not used)",
        },
        _ => "",
    };
    let detail = format!(
        "checkpoint {} size {} signed by {} log key {}+{:08x}; {cosig_detail}; quorum met{bundled_note}",
        body.origin,
        body.size,
        if matches!(ctx.opts.trust, Trust::Pinned(_)) {
            "the pinned"
        } else {
            "the BUNDLED"
        },
        log.name(),
        log.key_id(),
    );
    ctx.note = note_text;
    ctx.checkpoint = Some(body);
    ctx.log = Some(log);
    ctx.policy = Some(policy);
    Ok(detail)
}
