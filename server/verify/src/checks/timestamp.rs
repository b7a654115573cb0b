//! Check 3: an RFC 3161 timestamp over the checkpoint (none is produced yet).

use super::*;

pub(super) fn check_timestamp(ctx: &mut Ctx<'_>) -> Step {
    if ctx.bundle.contains(layout::CHECKPOINT_TSR) {
        Ok(skipped(
            "checkpoint.tsr is present but RFC 3161 verification is not implemented; check it with openssl ts -verify",
        ))
    } else {
        Ok(skipped(
            "no RFC 3161 token (no TSA configured); time rests on the clock cosignature",
        ))
    }
}
