"""Card readers: PC/SC (RFID/NFC and EMV contactless) and serial 125 kHz readers."""
