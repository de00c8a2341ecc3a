//! The request pipeline: request checks, public paths, token verification, ACL.
