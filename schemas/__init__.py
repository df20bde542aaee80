"""Wire contracts of DPHP: CloudEvents envelopes and event data (CONTRACT.md section 2)."""
