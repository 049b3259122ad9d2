"""Workday (HR): read-only worker connector (SOAP Get_Workers), its local sandbox and the WSDL it serves."""
