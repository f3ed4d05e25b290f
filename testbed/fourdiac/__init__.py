"""Eclipse 4diac compatibility.

XML type and system files, boot files, the FBDK ASN.1 codec and the FORTE
management protocol.
"""
