DROP TABLE bot_posts;
