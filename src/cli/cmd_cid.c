/* cmd_cid.c */
