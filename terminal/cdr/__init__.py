"""OCPI 2.2.1 CDRs (Charge Detail Records) of closed sessions (docs/cdr.md).

`cdrs.build_cdr` builds one from the session's bill; `site.CdrSite` is the station's
part; `periods` the charging periods; `signed_data` the signed meter values;
`tariff_json` the tariff in OCPI form; `credit` the Credit CDR and new CDR after a refund.
"""

from terminal.cdr.cdrs import CdrInput, build_cdr, dumps, loads
from terminal.cdr.site import CdrSite, site_of

__all__ = ["CdrInput", "CdrSite", "build_cdr", "dumps", "loads", "site_of"]
