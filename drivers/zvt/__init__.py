"""ZVT (PA00P015, the German ECR <-> payment-terminal protocol over TCP): the codec
(`bcd`, `tlv`, `apdu`, `codes`, `messages`) and the asyncio ECR client (`client`).

docs/zvt.md describes the subset implemented and the byte layouts.
"""
