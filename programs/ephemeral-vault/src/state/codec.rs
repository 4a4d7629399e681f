//! Fixed-offset reading and writing of account fields in Borsh's layout, for the accounts whose
//! `AccountSerialize` / `AccountDeserialize` this program writes itself (`Vault`): constant-size
//! copies the compiler inlines, instead of Borsh's generic writer and reader.
//!
//! (`Config` keeps `#[account]`: it is only read on the hot paths, and there Borsh's reader of
//! its 132 bytes measured 15 compute units cheaper than this codec.)

/// Takes the next `N` bytes off `rest`; `None` when fewer are left.
#[inline(always)]
pub(crate) fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(*head)
}

/// Writes `bytes` to the front of `rest` and moves past them; `None` when `rest` is too short.
#[inline(always)]
pub(crate) fn put<const N: usize>(rest: &mut &mut [u8], bytes: [u8; N]) -> Option<()> {
    let (head, tail) = core::mem::take(rest).split_first_chunk_mut::<N>()?;
    *head = bytes;
    *rest = tail;
    Some(())
}
