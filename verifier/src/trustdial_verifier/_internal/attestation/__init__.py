"""AWS Nitro attestation documents: the COSE envelope, the payload, the certificate path to the
pinned AWS root, the policies a relying party states, and the verified document."""
