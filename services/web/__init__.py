"""The web service: the recap, meetings and printable forms for officials, Bawaslu and parties."""
